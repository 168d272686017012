package eventstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/internal/metrics"
)

// DefaultSnapshotEvery is how many events an aggregate gets between two
// stored snapshots when Options.SnapshotEvery is zero.
const DefaultSnapshotEvery = 1000

// snapshotQueue bounds the snapshots waiting for the background writer;
// past it a snapshot is dropped, as a cache entry may be.
const snapshotQueue = 256

// storedSnapshot is what the snapshots bucket holds for one aggregate. It
// is a cache of a fold, never trusted over the events: a load uses it only
// when the event at LastSeq is on the aggregate's subject with Version and
// LastHash, so the hash chain of the tail links to it, and when Format is
// the format the kind folds to today.
type storedSnapshot struct {
	Format   int             `json:"format"`
	Version  uint64          `json:"version"`
	LastSeq  uint64          `json:"last_seq"`
	LastHash string          `json:"last_hash"`
	State    json.RawMessage `json:"state"`
}

// snapshotJob is one snapshot to store; encode runs on the writer's
// goroutine, off the command's path (states are immutable values, so
// reading one there is safe).
type snapshotJob struct {
	aggregate, key string
	encode         func() ([]byte, error)
}

// snapshots stores aggregate snapshots in a key-value bucket beside the
// events stream, written by one background goroutine, best effort.
//
// A bucket of its own rather than subjects in the events stream: nothing
// that reads the events (projections, export, verify, the saga) ever sees
// a snapshot, a rollup can never be enabled on the stream that holds the
// history, and the bucket can be dropped whole to discard every snapshot
// (they are rebuilt as aggregates are used).
type snapshots struct {
	kv      jetstream.KeyValue
	every   uint64
	timeout time.Duration
	// maxSize is the largest snapshot the server takes (its max payload,
	// less room for headers).
	maxSize int

	mu     sync.Mutex
	closed bool
	jobs   chan snapshotJob
	cancel context.CancelFunc
	done   chan struct{}
}

// openSnapshots creates or opens the bucket <stream>_snapshots, with one
// value per key and the stream's replica count, and starts the writer.
func openSnapshots(ctx context.Context, s *Store, replicas int, every uint64) (*snapshots, error) {
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.stream + "_snapshots",
		Description: "order engine aggregate snapshots (a cache of folds; the events stream is the truth)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, errors.Wrap(unavailable(err), "open the snapshots bucket")
	}
	wctx, cancel := context.WithCancel(context.Background())
	sn := &snapshots{
		kv: kv, every: every, timeout: s.timeout, maxSize: int(s.nc.MaxPayload()) - 4096,
		jobs: make(chan snapshotJob, snapshotQueue), cancel: cancel, done: make(chan struct{}),
	}
	go sn.run(wctx)
	return sn, nil
}

// snapshotKey is the bucket key of aggregate id of kind: the id is
// base64url-encoded so any subject token makes a valid key.
func snapshotKey(kind, id string) string {
	return kind + "." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// due reports whether an append that took an aggregate from version before
// to after crossed a multiple of every, so a snapshot of after is due.
func (sn *snapshots) due(before, after uint64) bool {
	return sn != nil && sn.every > 0 && before/sn.every != after/sn.every
}

// enqueue hands j to the writer, or drops it when the queue is full or the
// store is closed: a snapshot is a cache, and the next one is N events away.
func (sn *snapshots) enqueue(j snapshotJob) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.closed {
		return
	}
	select {
	case sn.jobs <- j:
	default:
		metrics.SnapshotWrites.WithLabelValues(j.aggregate, "dropped").Inc()
	}
}

func (sn *snapshots) run(ctx context.Context) {
	defer close(sn.done)
	for j := range sn.jobs {
		if ctx.Err() != nil {
			continue // closing: drain without writing
		}
		metrics.SnapshotWrites.WithLabelValues(j.aggregate, sn.write(ctx, j)).Inc()
	}
}

// write stores one snapshot, gzipped, and returns the result label. The
// compression is the client's because the limit is on what is published:
// a hot SKU's held reservation ids share long prefixes, and gzip lets a
// snapshot of several times more of them fit the server's max payload.
func (sn *snapshots) write(ctx context.Context, j snapshotJob) string {
	raw, err := j.encode()
	if err != nil {
		return "failed"
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil || zw.Close() != nil {
		return "failed"
	}
	data := buf.Bytes()
	if len(data) > sn.maxSize {
		return "too_large"
	}
	ctx, cancel := context.WithTimeout(ctx, sn.timeout)
	defer cancel()
	if _, err := sn.kv.Put(ctx, j.key, data); err != nil {
		return "failed"
	}
	return "stored"
}

// get returns the stored snapshot under key; ok is false when there is
// none or it cannot be read (a snapshot is never needed).
func (sn *snapshots) get(ctx context.Context, key string) (storedSnapshot, bool) {
	ctx, cancel := context.WithTimeout(ctx, sn.timeout)
	defer cancel()
	e, err := sn.kv.Get(ctx, key)
	if err != nil {
		return storedSnapshot{}, false
	}
	s, err := decodeSnapshot(e.Value())
	return s, err == nil
}

// decodeSnapshot reads a stored value: gzipped JSON.
func decodeSnapshot(data []byte) (storedSnapshot, error) {
	var s storedSnapshot
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return s, errors.Wrap(err, "decompress snapshot")
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return s, errors.Wrap(err, "decompress snapshot")
	}
	return s, errors.Wrap(json.Unmarshal(raw, &s), "decode snapshot")
}

// close stops the writer; snapshots still queued are dropped.
func (sn *snapshots) close() {
	sn.mu.Lock()
	if !sn.closed {
		sn.closed = true
		sn.cancel()
		close(sn.jobs)
	}
	sn.mu.Unlock()
	<-sn.done
}
