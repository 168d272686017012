package eventstore

import (
	"context"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// DefaultShards is how many streams a new store spreads its aggregates
// over (Options.Shards 0). A store that already exists keeps the count it
// was created with: it is read back from the streams, since changing it
// would move aggregates to other shards.
//
// One, by measurement on the 2-core VM this engine is benchmarked on
// (docs/design/sharded-store.md): with four streams the server committed
// 97 atomic batches/s against 81 with one, so each stream's batches held a
// quarter of the commands and place fell from 2,273 to 751 orders/s, the
// flash sale from 2,198 to 961 outcomes/s. On that disk the streams'
// per-batch work does not overlap; on one with parallel fsyncs (NVMe, an
// R3 cluster whose batches stage in memory) more shards may pay.
const DefaultShards = 1

// Metadata keys on the streams of an N-shard store.
const (
	metaShards = "engine_shards"
	metaShard  = "engine_shard"
)

// The layout of the event store, all in this one place:
//
//   - one-shard mode: one stream named Options.Stream ("EVENTS") holding the
//     subjects orders.*, inventory.*, idem.*, resv.<p>.<sku>, timer.*,
//     sched.*, expire.*, exactly as stores before sharding were laid out;
//   - N-shard mode (N > 1): stream <Stream>_S<k> for shard k in [0, N),
//     holding the same subjects, each prefixed with the shard token "s<k>.",
//     so that no two streams claim a subject.
//
// Every other part of the package speaks of logical subjects (without the
// prefix); shard.subject adds it and readers strip it.

// shardStream returns the stream name of shard k of an n-shard store.
func shardStream(base string, n, k int) string {
	if n == 1 {
		return base
	}
	return base + "_S" + strconv.Itoa(k)
}

// shardPrefix returns the subject prefix of shard k of an n-shard store.
func shardPrefix(n, k int) string {
	if n == 1 {
		return ""
	}
	return "s" + strconv.Itoa(k) + "."
}

// logicalSubjects are the subjects of one shard's stream, unprefixed.
func logicalSubjects() []string {
	return []string{OrderSubjects + ".*", InventorySubjects + ".*", IdemSubjects + ".*",
		ReservationSubjects + ".*.*", ScheduleSubjects + ".*", ExpirySubjects + ".*", TimerSubjects + ".*"}
}

// shard is one stream of the store with its group committer.
type shard struct {
	index  int
	stream string
	prefix string
	commit *committer
}

// subject returns the stored subject of a logical one.
func (sh *shard) subject(logical string) string { return sh.prefix + logical }

// logical strips the shard prefix off a stored subject.
func (sh *shard) logical(stored string) string { return strings.TrimPrefix(stored, sh.prefix) }

// Position is where a message is stored: its shard and its sequence in
// that shard's stream. Positions of one shard are totally ordered; across
// shards they are not (see docs/design/sharded-store.md).
type Position struct {
	Shard int
	Seq   uint64
}

// ShardOf returns the shard of aggregate id in a store of n shards:
// FNV-1a of the id, stable forever.
func ShardOf(id string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// Shards returns how many shards (streams) the store has; 1 in one-shard
// mode.
func (s *Store) Shards() int { return len(s.shards) }

// ShardOf returns the shard that holds aggregate id, its events, its
// idempotency records and the messages its commands store beside them.
func (s *Store) ShardOf(id string) int { return ShardOf(id, len(s.shards)) }

func (s *Store) shardFor(id string) *shard { return s.shards[s.ShardOf(id)] }

// shardAt returns shard k, or an error naming the bad index.
func (s *Store) shardAt(k int) (*shard, error) {
	if k < 0 || k >= len(s.shards) {
		return nil, errors.Newf("no shard %d in a store of %d", k, len(s.shards))
	}
	return s.shards[k], nil
}

// existingShards returns how many shards the store already has: 1 when the
// stream base exists (a store from before sharding, or one created in
// one-shard mode), the count recorded on <base>_S0 when that exists, and
// 0 when neither does (a new store).
func existingShards(ctx context.Context, js jetstream.JetStream, base string) (int, error) {
	if _, err := js.Stream(ctx, base); err == nil {
		return 1, nil
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, errors.Wrapf(unavailable(err), "read stream %s", base)
	}
	st, err := js.Stream(ctx, shardStream(base, 2, 0))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, errors.Wrapf(unavailable(err), "read stream %s", shardStream(base, 2, 0))
	}
	n, err := strconv.Atoi(st.CachedInfo().Config.Metadata[metaShards])
	if err != nil || n < 2 {
		return 0, errors.Newf("stream %s does not record its shard count (metadata %s)", shardStream(base, 2, 0), metaShards)
	}
	return n, nil
}

// perShard runs fn for every shard at once and returns the first error
// once all have returned.
func (s *Store) perShard(fn func(sh *shard) error) error {
	var g errgroup.Group
	for _, sh := range s.shards {
		g.Go(func() error { return fn(sh) })
	}
	return g.Wait()
}

// Locate returns the name of shard k's stream and the subject a logical
// subject (orders.<id>, timer.<id>…) is stored under there: for operators'
// tools and tests that read or repair a stream directly. It panics for a
// shard the store does not have.
func (s *Store) Locate(k int, logical string) (stream, stored string) {
	sh := s.shards[k]
	return sh.stream, sh.subject(logical)
}
