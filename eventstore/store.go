// Package eventstore keeps the engine's events in NATS JetStream: one subject
// per aggregate, optimistic concurrency on the subject's last sequence,
// atomic multi-event appends, group commit of concurrent appends into one
// fsync, and a SHA-256 hash chain per aggregate.
package eventstore

import (
	"context"
	"maps"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Subject prefixes of the events stream. Every aggregate instance has its own
// subject under one of them; idempotency records live beside the events so
// they can be written in the same atomic batch as the events they describe.
const (
	OrderSubjects     = "orders"
	InventorySubjects = "inventory"
	IdemSubjects      = "idem"
)

// Options configures Open.
type Options struct {
	// Stream is the JetStream stream name; "EVENTS" when empty. In N-shard
	// mode the streams are named <Stream>_S<k> (see shards.go).
	Stream string
	// Shards is how many streams a new store spreads its aggregates over;
	// DefaultShards when 0. A store that exists keeps its own count: a
	// stream named Stream (from before sharding) means one-shard mode
	// whatever Shards says, so an upgrade never splits a history.
	Shards int
	// Replicas forces the stream's replica count; 0 picks 3 when the
	// connected cluster has at least three servers and 1 otherwise.
	Replicas int
	// RequestTimeout bounds one publish or read; 10s when zero.
	RequestTimeout time.Duration
	// Committers is how many group-commit batches may be in flight at once
	// per shard.
	Committers int
	// Linger bounds how long a busy group committer waits for more
	// commands before it publishes a batch; DefaultLinger when zero, no
	// wait when negative. MaxBatch bounds a batch's messages; 1000 (the
	// server's atomic batch limit) when zero.
	Linger   time.Duration
	MaxBatch int
	// SnapshotEvery is how many events an aggregate of a kind with
	// snapshots gets between two stored snapshots; DefaultSnapshotEvery
	// when zero, none when negative.
	SnapshotEvery int
}

// duplicateWindow is how long the stream remembers a Nats-Msg-Id. It need
// only cover a publish retried after its acknowledgement was lost (within
// RequestTimeout): correctness never rests on it, since every append also
// expects its subject's last sequence and a keyed command its idempotency
// record's empty subject. nats-server holds every id of the window in
// memory (at 800 orders/s, about 6,000 ids a second), so a long window is
// memory that grows with the rate.
const duplicateWindow = 30 * time.Second

// Store is the event store. It is safe for concurrent use.
type Store struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  string   // the base name (Options.Stream)
	shards  []*shard // one per stream; one in one-shard mode
	timeout time.Duration
	snaps   *snapshots // nil when snapshots are off
	// replicas is the events streams' replica count, which the feed
	// stream (feed.go) takes too.
	replicas int
	watch    *connWatch
	locks    keyedMutex
	closeMu  sync.Once
	// late is how late the last expiry started (expiryLate).
	late expiryLate
}

// Open makes sure the events stream exists with the settings the engine
// relies on and starts the group committer. It returns an error when
// JetStream is unreachable or refuses the stream configuration.
func Open(ctx context.Context, nc *nats.Conn, o Options) (*Store, error) {
	if o.Stream == "" {
		o.Stream = "EVENTS"
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.Committers == 0 {
		// The server commits one atomic batch at a time per stream, so a
		// second committer in flight only makes both batches smaller.
		o.Committers = 1
	}
	if o.Replicas == 0 {
		o.Replicas = 1
		if len(nc.Servers()) >= 3 {
			o.Replicas = 3
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, errors.Wrap(err, "open JetStream")
	}
	n, err := shardCount(ctx, js, o)
	if err != nil {
		return nil, err
	}
	s := &Store{nc: nc, js: js, stream: o.Stream, timeout: o.RequestTimeout, watch: watchConn(nc), replicas: o.Replicas}
	for k := range n {
		sh := &shard{index: k, stream: shardStream(o.Stream, n, k), prefix: shardPrefix(n, k)}
		subjects := logicalSubjects()
		for i := range subjects {
			subjects[i] = sh.subject(subjects[i])
		}
		cfg := jetstream.StreamConfig{
			Name:               sh.stream,
			Description:        "order engine event store",
			Subjects:           subjects,
			Storage:            jetstream.FileStorage,
			Retention:          jetstream.LimitsPolicy,
			Replicas:           o.Replicas,
			Duplicates:         duplicateWindow,
			AllowDirect:        true,
			AllowAtomicPublish: true,
			AllowMsgTTL:        true,
			AllowMsgSchedules:  true,
			MaxMsgsPerSubject:  -1,
			MaxMsgs:            -1,
			MaxBytes:           -1,
		}
		if n > 1 {
			cfg.Description = "order engine event store, shard " + strconv.Itoa(k) + " of " + strconv.Itoa(n)
			cfg.Metadata = map[string]string{metaShards: strconv.Itoa(n), metaShard: strconv.Itoa(k)}
		}
		if err := ensureStream(ctx, js, cfg); err != nil {
			s.watch.close()
			return nil, err
		}
		s.shards = append(s.shards, sh)
	}
	if err := s.awaitDirectGets(ctx); err != nil {
		s.watch.close()
		return nil, err
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = DefaultSnapshotEvery
	}
	if o.SnapshotEvery > 0 {
		if s.snaps, err = openSnapshots(ctx, s, o.Replicas, uint64(o.SnapshotEvery)); err != nil {
			s.watch.close()
			return nil, err
		}
	}
	for _, sh := range s.shards {
		sh.commit = newCommitter(nc, s.watch, sh.stream, o.Committers, o.RequestTimeout)
		sh.commit.tune(o.Linger, o.MaxBatch)
	}
	return s, nil
}

// shardCount decides how many shards the store has: the count it already
// has, or o.Shards (DefaultShards when 0) for a new one.
func shardCount(ctx context.Context, js jetstream.JetStream, o Options) (int, error) {
	want := o.Shards
	if want <= 0 {
		want = DefaultShards
	}
	have, err := existingShards(ctx, js, o.Stream)
	if err != nil || have == 0 {
		return want, err
	}
	// Store.Shards tells the caller, who may log the difference.
	return have, nil
}

// awaitDirectGets waits until the stream answers direct gets, which every
// load uses. On a cluster the replicas subscribe to them a moment after
// the stream is created, and a read in between finds no responder.
func (s *Store) awaitDirectGets(ctx context.Context) error {
	deadline := time.Now().Add(s.timeout)
	for _, sh := range s.shards {
		for {
			_, _, err := s.lastMsg(ctx, sh, OrderSubjects+".direct-get-probe")
			if err == nil || !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
				if err != nil {
					return err
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// ensureStream creates the stream, or updates it when it differs from cfg.
// An engine starting beside running ones finds the stream as it wants it
// and leaves it alone: updating a stream while other engines create
// consumers on it is needless, and the server's stream update races with
// its consumer creation (seen under the race detector).
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	stream, err := js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if _, err := js.CreateStream(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return errors.Wrapf(unavailable(err), "create stream %s", cfg.Name)
		}
		return nil
	case err != nil:
		return errors.Wrapf(unavailable(err), "read stream %s", cfg.Name)
	}
	have := stream.CachedInfo().Config
	want := have
	want.Description, want.Subjects, want.Storage, want.Retention = cfg.Description, cfg.Subjects, cfg.Storage, cfg.Retention
	want.Replicas, want.Duplicates, want.AllowDirect, want.AllowAtomicPublish = cfg.Replicas, cfg.Duplicates, cfg.AllowDirect, cfg.AllowAtomicPublish
	want.AllowMsgTTL, want.AllowMsgSchedules = cfg.AllowMsgTTL, cfg.AllowMsgSchedules
	want.MaxMsgsPerSubject, want.MaxMsgs, want.MaxBytes = cfg.MaxMsgsPerSubject, cfg.MaxMsgs, cfg.MaxBytes
	if len(cfg.Metadata) > 0 {
		// The server keeps metadata of its own beside ours.
		want.Metadata = maps.Clone(have.Metadata)
		if want.Metadata == nil {
			want.Metadata = map[string]string{}
		}
		maps.Copy(want.Metadata, cfg.Metadata)
	}
	if reflect.DeepEqual(want, have) {
		return nil
	}
	if _, err := js.UpdateStream(ctx, want); err != nil {
		return errors.Wrapf(unavailable(err), "update stream %s", cfg.Name)
	}
	return nil
}

// Close stops the group committer after the batches in flight have been
// answered or cut short by a lost connection, and the snapshot writer
// (dropping what it has not written). It does not close the NATS
// connection, which the caller owns.
func (s *Store) Close() {
	s.closeMu.Do(func() {
		for _, sh := range s.shards {
			sh.commit.close()
		}
		if s.snaps != nil {
			s.snaps.close()
		}
		s.watch.close()
	})
}

// Stream returns the name of the stream of shard k (the one stream in
// one-shard mode).
func (s *Store) Stream(k int) string { return s.shards[k].stream }

// Conn returns the NATS connection the store uses.
func (s *Store) Conn() *nats.Conn { return s.nc }

// Ping checks that the events stream answers.
func (s *Store) Ping(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return errors.Wrap(errNotConnected, "ping event store")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, sh := range s.shards {
		if _, err := s.js.Stream(ctx, sh.stream); err != nil {
			return errors.Wrap(unavailable(err), "ping event store")
		}
	}
	return nil
}
