package eventstore

import (
	"context"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/metrics"
	"github.com/orderengine/engine/internal/tracing"
)

// Kind describes one aggregate type to the store: its subject prefix and the
// domain functions that fold and encode its events.
type Kind[S, E any] struct {
	Name          string // aggregate_type in the envelope: "order", "inventory"
	Prefix        string // subject prefix: OrderSubjects, InventorySubjects
	SchemaVersion int
	Evolve        func(S, E) S
	Encode        func(E) (typ string, data []byte, err error)
	Decode        func(typ string, schemaVersion int, data []byte) (E, error)
	OccurredAt    func(E) time.Time
	// EvolveAll, when set, folds many events at once; aggregates whose
	// Evolve copies a large state use it to copy once per batch.
	EvolveAll func(S, []E) S
	// Outbox, when set, returns messages to store in the same atomic batch
	// as the events of one command (requests to other aggregates, timers):
	// they are stored if and only if the events are.
	Outbox func(before S, events []E, after Snapshot[S]) ([]*nats.Msg, error)
	// Headers, when set, returns headers to store with the message of one
	// of a command's events, given the state after all of them (nil for
	// none): facts about the event that readers of the stream act on
	// without decoding it, such as a confirmation's expiry due.
	Headers func(e E, after S) nats.Header
	// SchemaVersionOf, when set, returns the schema version stored with an
	// event of the given type; otherwise every type is stored as
	// SchemaVersion.
	SchemaVersionOf func(eventType string) int
	// SnapshotFormat, when not 0, has the store keep a snapshot of each
	// aggregate every Options.SnapshotEvery events (S encoded as JSON), so
	// that a cold load reads the snapshot and the events after it. It
	// names what the fold puts in S: change it whenever the fold changes,
	// and stored snapshots of the old format are ignored.
	SnapshotFormat int
}

// evolve folds events into s.
func (k Kind[S, E]) evolve(s S, events ...E) S {
	if k.EvolveAll != nil {
		return k.EvolveAll(s, events)
	}
	for _, e := range events {
		s = k.Evolve(s, e)
	}
	return s
}

// Snapshot is an aggregate's state with where it stands in the store.
type Snapshot[S any] struct {
	State    S
	Version  uint64 // number of events; 0 when the aggregate does not exist
	LastSeq  uint64 // stream sequence of the last event
	LastHash string
}

// Repository loads and updates aggregates of one kind. It keeps the last
// known snapshot of recently used aggregates so a load reads only the events
// past it, and an update whose cached snapshot is current needs no read at all.
type Repository[S, E any] struct {
	store *Store
	kind  Kind[S, E]
	cache *snapshotCache[S]
}

// NewRepository returns a repository for kind on s, caching up to cacheSize
// aggregates.
func NewRepository[S, E any](s *Store, kind Kind[S, E], cacheSize int) *Repository[S, E] {
	return &Repository[S, E]{store: s, kind: kind, cache: newSnapshotCache[S](cacheSize)}
}

// ShardOf returns the shard that holds aggregate id.
func (r *Repository[S, E]) ShardOf(id string) int { return r.store.ShardOf(id) }

// Subject returns the subject of aggregate id. The id must have been
// validated as a subject token by the caller.
func (r *Repository[S, E]) Subject(id string) string { return r.kind.Prefix + "." + id }

// Load returns the current snapshot of aggregate id: the zero snapshot when
// it has no events. It fails with domain.ErrUnavailable when JetStream does not
// answer, and with an assertion failure when the stored chain is broken.
//
// It folds the events past the cached snapshot; without one, and when the
// kind keeps stored snapshots and the history is longer than their
// interval, the events past the stored snapshot, if it matches the event at
// its sequence (else it is ignored and the whole history read).
func (r *Repository[S, E]) Load(ctx context.Context, id string) (Snapshot[S], error) {
	subject := r.Subject(id)
	last, ok, err := r.store.lastMsg(ctx, r.store.shardFor(id), subject)
	if err != nil || !ok {
		return Snapshot[S]{}, err
	}
	base, _ := r.cache.get(subject)
	if base.LastSeq == last.Seq {
		return base, nil
	}
	if base.LastSeq > last.Seq {
		base = Snapshot[S]{} // the stream was recreated; start over
	}
	env, envErr := DecodeEnvelope(last.Data)
	// Fast path: only one event was appended since the cached snapshot.
	if envErr == nil && env.Version == base.Version+1 {
		snap, err := r.apply(base, last.Seq, env)
		if err != nil {
			return Snapshot[S]{}, errors.Wrapf(err, "load %s", subject)
		}
		r.cache.put(subject, snap)
		return snap, nil
	}
	sn := r.snapshots()
	if envErr == nil && sn != nil && env.Version > base.Version+sn.every {
		if stored, ok := r.storedSnapshot(ctx, id, base, last.Seq); ok {
			snap, err := r.replay(ctx, subject, stored, true, last.Seq)
			if err == nil {
				metrics.SnapshotLoads.WithLabelValues(r.kind.Name, "used").Inc()
				r.cache.put(subject, snap)
				return snap, nil
			}
			if !errors.Is(err, errSnapshotMismatch) {
				return Snapshot[S]{}, errors.Wrapf(err, "load %s", subject)
			}
			metrics.SnapshotLoads.WithLabelValues(r.kind.Name, "ignored").Inc()
		}
	}
	snap, err := r.replay(ctx, subject, base, false, last.Seq)
	if err != nil {
		return Snapshot[S]{}, errors.Wrapf(err, "load %s", subject)
	}
	r.cache.put(subject, snap)
	if sn != nil && snap.Version-base.Version >= sn.every {
		// A long history was read: leave a snapshot so the next cold load
		// does not read it again (histories from before snapshots, or
		// whose snapshot was lost).
		r.enqueueSnapshot(id, snap)
	}
	return snap, nil
}

// errSnapshotMismatch says a stored snapshot does not match the events.
var errSnapshotMismatch = errors.New("stored snapshot does not match the events")

// replay folds the events of subject after start, through upTo. With
// fromSnapshot, start is a stored snapshot, and the event at its sequence
// must be on subject with its version and hash (errSnapshotMismatch
// otherwise); the chain check of the next event then links to it.
func (r *Repository[S, E]) replay(ctx context.Context, subject string, start Snapshot[S], fromSnapshot bool, upTo uint64) (Snapshot[S], error) {
	from, matched := start.LastSeq+1, !fromSnapshot
	if fromSnapshot {
		from = start.LastSeq
	}
	snap := start
	var page []E
	err := r.store.readSubject(ctx, r.store.shardFor(subject[len(r.kind.Prefix)+1:]), subject, from, upTo, func(m RawMsg) error {
		env, err := DecodeEnvelope(m.Data)
		if !matched {
			if err != nil || m.Seq != start.LastSeq || env.Version != start.Version || env.Hash != start.LastHash {
				return errSnapshotMismatch
			}
			matched = true
			return nil
		}
		if err != nil {
			return err
		}
		ev, err := r.check(snap, m.Seq, env)
		if err != nil {
			return err
		}
		page = append(page, ev)
		snap = Snapshot[S]{State: snap.State, Version: env.Version, LastSeq: m.Seq, LastHash: env.Hash}
		if len(page) == readBatch {
			snap.State, page = r.kind.evolve(snap.State, page...), page[:0]
		}
		return nil
	})
	if err == nil && !matched {
		err = errSnapshotMismatch // nothing at all at the snapshot's sequence
	}
	if err != nil {
		return Snapshot[S]{}, err
	}
	snap.State = r.kind.evolve(snap.State, page...)
	return snap, nil
}

// apply folds one stored event into snap after checking its chain link.
func (r *Repository[S, E]) apply(snap Snapshot[S], seq uint64, env Envelope) (Snapshot[S], error) {
	ev, err := r.check(snap, seq, env)
	if err != nil {
		return Snapshot[S]{}, err
	}
	return Snapshot[S]{State: r.kind.Evolve(snap.State, ev), Version: env.Version, LastSeq: seq, LastHash: env.Hash}, nil
}

// check verifies that env follows snap in the hash chain and decodes it.
func (r *Repository[S, E]) check(snap Snapshot[S], seq uint64, env Envelope) (E, error) {
	var zero E
	var prev *Envelope
	if snap.Version > 0 {
		prev = &Envelope{Version: snap.Version, Hash: snap.LastHash}
	}
	if err := CheckLink(prev, &env); err != nil {
		return zero, errors.AssertionFailedf("hash chain broken at seq %d: %v", seq, err)
	}
	ev, err := r.kind.Decode(env.Type, env.SchemaVersion, env.Data)
	if err != nil {
		return zero, errors.Wrapf(err, "decode %s at seq %d", env.Type, seq)
	}
	return ev, nil
}

// UpdateOptions carries what an update records besides the events.
type UpdateOptions[S any] struct {
	// CommandID makes the append idempotent at the stream level: the events
	// carry Nats-Msg-Id CommandID:i, so a publish retried after a lost
	// acknowledgement is stored once. Required.
	CommandID     string
	CausationID   string
	CorrelationID string
	// MaxAttempts bounds the retries of an optimistic-concurrency conflict;
	// 5 when zero.
	MaxAttempts int
	// Settle marks the work that settles what was already admitted (the
	// reservation processors', the saga's and the expiry worker's): the
	// group committer stores it before commands waiting to be admitted, so
	// under overload grants, outcomes and releases keep pace and new
	// commands wait instead.
	Settle bool
	// IdemKey, when set, stores an IdemRecord (Fingerprint, CommandID)
	// under that key in the same atomic batch as the events: either both
	// are stored or neither.
	//
	// The key is not looked up before deciding: the record's message expects
	// its subject to be empty, so a used key fails the append as a
	// conflict, and then, like a refusal or a no-op, is answered with the
	// first outcome as Replay. A lookup up front would cost every command a
	// read, which waits for any batch the server is committing.
	IdemKey string
	// ExpectedVersion, when set, is the version the caller decided on
	// (HTTP If-Match): the update fails with domain.ErrPreconditionFailed
	// if the aggregate exists at another version. An aggregate that does
	// not exist is left to the decider, which knows whether that is a
	// not-found.
	ExpectedVersion *uint64
	// New says id was just generated for this command, so the aggregate has
	// no events yet and need not be read: the append expects its subject
	// empty, and fails as a conflict (then reloads) if it is not.
	New bool
	// KeyedCreate says id was derived from the command's idempotency key
	// (with New): the aggregate's first event is then the key's record, and
	// no record message is stored. Fingerprint goes into that event's
	// message headers; a second command with the key finds the aggregate's
	// subject taken, and is answered from its first event: the state after
	// it, with the stored fingerprint, so that a different request under
	// the same key is told apart.
	KeyedCreate bool
	// Fingerprint identifies the request; it is stored in the idempotency
	// record (IdemKey) or on the first event (KeyedCreate).
	Fingerprint string
	// OutboxDecided says the requests the events ask for (Kind.Outbox) are
	// decided in the same atomic batch, by the SKU's sequencer taking the
	// placement itself (commands' direct placement): no request message
	// is stored for them.
	OutboxDecided bool
	// Header, when set, is added to the headers of every event message of
	// the command: facts about this run of the command that are not part
	// of the events, such as the trace contexts of the requests a batch
	// decides (tracing.AddCause).
	Header nats.Header
}

// Result is the outcome of an update.
type Result[S any] struct {
	Before, After Snapshot[S]
	Envelopes     []Envelope
	// Replay is set when the idempotency key had been used already; nothing
	// was appended and the first outcome is in it.
	Replay *Replay[S]
}

// Replay is the first outcome of a command whose idempotency key is used
// again: the aggregate as that command left it (After.LastSeq is its
// consistency token) and the fingerprint of its request, which the caller
// compares with the retry's.
type Replay[S any] struct {
	Fingerprint string
	CommandID   string
	After       Snapshot[S]
}

// Update loads aggregate id, asks decide for the events of a command and
// appends them with the aggregate's last sequence as the expected one. On a
// concurrency conflict it reloads and decides again, up to MaxAttempts times,
// then fails with domain.ErrConflict. decide's own errors come back as they
// are; with no events nothing is written. Commands on one aggregate in this
// process are serialized so they do not conflict with each other.
func (r *Repository[S, E]) Update(ctx context.Context, id string, o UpdateOptions[S], decide func(Snapshot[S]) ([]E, error)) (Result[S], error) {
	return r.update(ctx, id, o, func(s Snapshot[S]) ([]E, *S, []*Rider, error) {
		events, err := decide(s)
		return events, nil, nil, err
	})
}

// Execute is Update for a command of the domain: decide is the domain's
// decider (domain.DecideOrder, domain.DecideSKU), called with the
// aggregate's state and cmd on every attempt, so that a command runs
// handler → command → decider → append without a call back into the
// caller's package. It also returns the events appended (nil for a replay
// or a no-op).
func Execute[S, E, C any](ctx context.Context, r *Repository[S, E], id string, o UpdateOptions[S],
	decide func(S, C) ([]E, error), cmd C) (Result[S], []E, error) {
	var events []E
	res, err := r.update(ctx, id, o, func(s Snapshot[S]) ([]E, *S, []*Rider, error) {
		var err error
		events, err = decide(s.State, cmd) // the last attempt's are the ones appended
		return events, nil, nil, err
	})
	if err != nil || res.Replay != nil || res.After.LastSeq == res.Before.LastSeq {
		events = nil
	}
	return res, events, err
}

// UpdateFolded is Update for deciders that fold their events as they decide
// (a batch decider): decide also returns the state after its events, which
// the repository then trusts instead of folding them a second time.
func (r *Repository[S, E]) UpdateFolded(ctx context.Context, id string, o UpdateOptions[S], decide func(Snapshot[S]) ([]E, S, error)) (Result[S], error) {
	return r.update(ctx, id, o, func(s Snapshot[S]) ([]E, *S, []*Rider, error) {
		events, after, err := decide(s)
		return events, &after, nil, err
	})
}

// UpdateFoldedWith is UpdateFolded whose decide may also return riders:
// appends to other aggregates of the same shard, prepared with Prepare,
// that are stored in the same atomic batch as the update's events or not
// at all. When the batch is refused, decide runs again on a fresh state
// (attempt counts from 1), so a rider prepared against a state that moved
// on costs a retry, never a wrong append.
func (r *Repository[S, E]) UpdateFoldedWith(ctx context.Context, id string, o UpdateOptions[S], decide func(s Snapshot[S], attempt int) ([]E, S, []*Rider, error)) (Result[S], error) {
	attempt := 0
	return r.update(ctx, id, o, func(s Snapshot[S]) ([]E, *S, []*Rider, error) {
		attempt++
		events, after, riders, err := decide(s, attempt)
		return events, &after, riders, err
	})
}

func (r *Repository[S, E]) update(ctx context.Context, id string, o UpdateOptions[S], decide func(Snapshot[S]) ([]E, *S, []*Rider, error)) (Result[S], error) {
	if o.CommandID == "" {
		return Result[S]{}, errors.AssertionFailedf("update without a command id")
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 5
	}
	if o.KeyedCreate && !o.New {
		return Result[S]{}, errors.AssertionFailedf("a keyed create must be new")
	}
	if o.ExpectedVersion != nil {
		decide = r.expectVersion(*o.ExpectedVersion, decide)
	}
	subject := r.Subject(id)
	unlock := r.store.locks.lock(subject)
	defer unlock()

	snap, cached := r.cache.get(subject)
	fresh := !cached
	if fresh && !o.New { // a new aggregate's snapshot is the zero one, as Load's
		var err error
		if snap, err = r.Load(ctx, id); err != nil {
			return Result[S]{}, err
		}
	}
	for attempt := 1; ; attempt++ {
		events, folded, riders, err := decide(snap)
		if (err != nil || len(events) == 0) && !fresh {
			// A refusal or a no-op must not rest on a stale cache.
			if snap, err = r.Load(ctx, id); err != nil {
				return Result[S]{}, err
			}
			fresh = true
			events, folded, riders, err = decide(snap)
		}
		if err != nil || len(events) == 0 {
			// A retry of a command that succeeded may be refused (an order
			// paid twice) or have nothing left to do: answer it as first.
			rec, ok, lerr := r.lookupRecord(ctx, id, o)
			if lerr != nil {
				return Result[S]{}, lerr
			}
			if ok {
				return Result[S]{Replay: &rec}, nil
			}
		}
		if err != nil {
			return Result[S]{}, err
		}
		if len(events) == 0 {
			return Result[S]{Before: snap, After: snap}, nil
		}
		res, err := r.append(ctx, subject, snap, events, folded, o, riders)
		switch {
		case err == nil:
			r.cache.put(subject, res.After)
			r.store.announce(subject)
			if sn := r.snapshots(); sn.due(res.Before.Version, res.After.Version) {
				r.enqueueSnapshot(id, res.After)
			}
			return res, nil
		case errors.Is(err, errAlreadyStored):
			// Our own earlier publish got through, or a twin of this command
			// with the same idempotency key did: answer from the store.
			r.cache.remove(subject)
			if rec, ok, lerr := r.lookupRecord(ctx, id, o); lerr == nil && ok {
				return Result[S]{Replay: &rec}, nil
			}
			after, err := r.Load(ctx, id)
			return Result[S]{Before: snap, After: after}, err
		case errors.Is(err, domain.ErrConflict):
			metrics.AppendConflicts.WithLabelValues(r.kind.Name).Inc()
			r.cache.remove(subject)
			if rec, ok, lerr := r.lookupRecord(ctx, id, o); lerr == nil && ok {
				return Result[S]{Replay: &rec}, nil
			}
			if attempt >= o.MaxAttempts {
				return Result[S]{}, errors.Wrapf(err, "%s still conflicting after %d attempts", subject, attempt)
			}
			if snap, err = r.Load(ctx, id); err != nil {
				return Result[S]{}, err
			}
			fresh = true
		default:
			r.cache.remove(subject)
			return Result[S]{}, err
		}
	}
}

// expectVersion checks the caller's expected version before decide runs,
// on each attempt's state: a stale cache is reloaded before a refusal is
// final, as for the decider's own refusals.
func (r *Repository[S, E]) expectVersion(want uint64, decide func(Snapshot[S]) ([]E, *S, []*Rider, error)) func(Snapshot[S]) ([]E, *S, []*Rider, error) {
	return func(s Snapshot[S]) ([]E, *S, []*Rider, error) {
		if s.Version > 0 && s.Version != want {
			return nil, nil, nil, errors.Wrapf(domain.ErrPreconditionFailed,
				"If-Match names version %d but the %s is at version %d", want, r.kind.Name, s.Version)
		}
		return decide(s)
	}
}

// lookupRecord finds the first outcome of a twin command that won the race
// for the same idempotency key.
func (r *Repository[S, E]) lookupRecord(ctx context.Context, id string, o UpdateOptions[S]) (Replay[S], bool, error) {
	if o.KeyedCreate {
		return r.createRecord(ctx, id)
	}
	if o.IdemKey == "" {
		return Replay[S]{}, false, nil
	}
	// The record is on the shard of the aggregate the command addressed.
	rec, ok, err := r.store.lookupIdem(ctx, r.store.shardFor(id), o.IdemKey)
	if err != nil || !ok {
		return Replay[S]{}, false, err
	}
	after, err := r.loadAt(ctx, id, rec.EventSeq)
	if err != nil {
		return Replay[S]{}, false, errors.Wrapf(err, "state after the command of idempotency record %s", o.IdemKey)
	}
	return Replay[S]{Fingerprint: rec.Fingerprint, CommandID: rec.CommandID, After: after}, true, nil
}

// loadAt returns aggregate id as of stream sequence seq, the last event of
// a command: from the cache when that is where it stands, else folded from
// its first event (replays are rare; commands are not slowed for them).
func (r *Repository[S, E]) loadAt(ctx context.Context, id string, seq uint64) (Snapshot[S], error) {
	if cached, ok := r.cache.get(r.Subject(id)); ok && cached.LastSeq == seq {
		return cached, nil
	}
	snap, err := r.replay(ctx, r.Subject(id), Snapshot[S]{}, false, seq)
	if err != nil {
		return Snapshot[S]{}, err
	}
	if snap.LastSeq != seq {
		return Snapshot[S]{}, errors.AssertionFailedf("no event of %s at seq %d", r.Subject(id), seq)
	}
	return snap, nil
}

// fingerprintHeader carries the request fingerprint of a keyed create on
// the aggregate's first event (UpdateOptions.KeyedCreate). It is a header,
// outside the hashed envelope, because it describes the request, not the
// event.
const fingerprintHeader = "Engine-Request-Fingerprint"

// createRecord rebuilds the first outcome of a keyed create from the
// aggregate's first event: the state right after it, and the fingerprint
// stored with it.
func (r *Repository[S, E]) createRecord(ctx context.Context, id string) (Replay[S], bool, error) {
	subject := r.Subject(id)
	m, h, ok, err := r.store.nextMsg(ctx, r.store.shardFor(id), subject, 1)
	if err != nil || !ok {
		return Replay[S]{}, false, err
	}
	env, err := DecodeEnvelope(m.Data)
	if err != nil {
		return Replay[S]{}, false, errors.Wrapf(err, "decode first event of %s", subject)
	}
	first, err := r.apply(Snapshot[S]{}, m.Seq, env)
	if err != nil {
		return Replay[S]{}, false, errors.Wrapf(err, "first event of %s", subject)
	}
	return Replay[S]{Fingerprint: h.Get(fingerprintHeader), CommandID: env.CommandID, After: first}, true, nil
}

// sealed is an append ready to be committed: its messages, subjects
// already on its shard, and the result it has once stored (After.LastSeq
// still to be set from the stream sequence).
type sealed[S any] struct {
	res    Result[S]
	msgs   []*nats.Msg
	events int
	shard  *shard
}

// seal seals events into envelopes chained after snap and builds the
// messages that store them, with the idempotency record and the outbox if
// any, on the aggregate's shard.
func (r *Repository[S, E]) seal(subject string, snap Snapshot[S], events []E, folded *S, o UpdateOptions[S]) (sealed[S], error) {
	res := Result[S]{Before: snap}
	after := snap
	msgs := make([]*nats.Msg, 0, len(events)+1)
	for i, ev := range events {
		typ, data, err := r.kind.Encode(ev)
		if err != nil {
			return sealed[S]{}, errors.Wrapf(err, "encode %T", ev)
		}
		version := r.kind.SchemaVersion
		if r.kind.SchemaVersionOf != nil {
			version = r.kind.SchemaVersionOf(typ)
		}
		env := Envelope{
			Type: typ, SchemaVersion: version, AggregateType: r.kind.Name,
			AggregateID: subject[len(r.kind.Prefix)+1:], Version: after.Version + 1,
			OccurredAt: r.kind.OccurredAt(ev), CommandID: o.CommandID,
			CausationID: o.CausationID, CorrelationID: o.CorrelationID, Data: data,
		}
		env.Seal(after.LastHash)
		body, err := env.Encode()
		if err != nil {
			return sealed[S]{}, err
		}
		m := nats.NewMsg(subject)
		m.Data = body
		m.Header.Set(jetstream.MsgIDHeader, o.CommandID+":"+strconv.Itoa(i))
		if i == 0 {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(snap.LastSeq, 10))
			if o.KeyedCreate {
				m.Header.Set(fingerprintHeader, o.Fingerprint)
			}
		}
		msgs = append(msgs, m)
		res.Envelopes = append(res.Envelopes, env)
		after = Snapshot[S]{State: after.State, Version: env.Version, LastHash: env.Hash}
	}
	if folded != nil {
		after.State = *folded
	} else {
		after.State = r.kind.evolve(snap.State, events...)
	}
	if r.kind.Headers != nil {
		for i, ev := range events {
			for k, v := range r.kind.Headers(ev, after.State) {
				msgs[i].Header[k] = v
			}
		}
	}
	for _, m := range msgs {
		for k, v := range o.Header {
			m.Header[k] = v
		}
	}
	if o.IdemKey != "" && !o.KeyedCreate {
		rec := IdemRecord{Fingerprint: o.Fingerprint, CommandID: o.CommandID, StoredAt: time.Now().UTC()}
		m, err := idemMsg(o.IdemKey, o.CommandID, rec)
		if err != nil {
			return sealed[S]{}, err
		}
		msgs = append(msgs, m)
	}
	// After the events and the idempotency record, which must be the
	// message right after the last event (replays derive the consistency
	// token from it).
	if r.kind.Outbox != nil && !o.OutboxDecided {
		out, err := r.kind.Outbox(snap.State, events, after)
		if err != nil {
			return sealed[S]{}, err
		}
		msgs = append(msgs, out...)
	}
	// Everything the command stores goes to its aggregate's shard, in one
	// atomic batch of that shard's stream.
	sh := r.store.shardFor(subject[len(r.kind.Prefix)+1:])
	for _, m := range msgs {
		m.Subject = sh.subject(m.Subject)
	}
	res.After = after
	return sealed[S]{res: res, msgs: msgs, events: len(events), shard: sh}, nil
}

// append commits events, sealed after snap, and the riders' messages after
// them as one atomic batch.
func (r *Repository[S, E]) append(ctx context.Context, subject string, snap Snapshot[S], events []E, folded *S, o UpdateOptions[S], riders []*Rider) (Result[S], error) {
	sd, err := r.seal(subject, snap, events, folded, o)
	if err != nil {
		return Result[S]{}, err
	}
	var span trace.Span
	end := noTrace
	if tracing.Enabled() {
		span, end = r.traceAppend(ctx, subject, len(events), sd.msgs)
	}
	msgs, subjects := sd.msgs, make([]string, 0, len(riders))
	for _, rd := range riders {
		if rd.shard != sd.shard {
			end(nil)
			return Result[S]{}, errors.AssertionFailedf("rider %s is on shard %d, %s on %d", rd.subject, rd.shard.index, subject, sd.shard.index)
		}
		msgs = append(msgs, rd.msgs...)
		subjects = append(subjects, rd.subject)
	}
	start := time.Now()
	cr := sd.shard.commit.submit(ctx, &pending{subject: subject, riders: subjects, msgs: msgs, settle: o.Settle, span: span})
	metrics.AppendDuration.WithLabelValues(r.kind.Name).Observe(time.Since(start).Seconds())
	end(cr.err)
	if cr.err != nil {
		if len(riders) > 0 && errors.Is(cr.err, errAlreadyStored) {
			// A rider's message was a duplicate, which says nothing of
			// whether this update's own events are stored: decide again.
			return Result[S]{}, errors.Wrapf(domain.ErrConflict, "a rider of %s was stored already: %v", subject, cr.err)
		}
		return Result[S]{}, cr.err
	}
	res := sd.res
	res.After.LastSeq = cr.firstSeq + uint64(sd.events) - 1
	next := cr.firstSeq + uint64(len(sd.msgs))
	for _, rd := range riders {
		rd.stored(next)
		next += uint64(len(rd.msgs))
	}
	return res, nil
}

// traceAppend starts the span of one command's append, a child of the
// caller's (the HTTP request's, a processor's or the saga's), and stores
// its trace context in the headers of every message the command stores
// (not its riders', which carry their own: UpdateOptions.Header): whoever
// consumes them (processor, saga, projection) continues the trace.
// end ends the span, marking it failed with the append's error if any.
func (r *Repository[S, E]) traceAppend(ctx context.Context, subject string, events int, msgs []*nats.Msg) (trace.Span, func(error)) {
	ctx, span := tracing.Start(ctx, "append "+r.kind.Name, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(tracing.AggregateKey.String(r.kind.Name),
			tracing.AggregateIDKey.String(subject[len(r.kind.Prefix)+1:]), tracing.EventsKey.Int(events)))
	for _, m := range msgs {
		tracing.Inject(ctx, m.Header)
	}
	return span, func(err error) {
		tracing.Fail(span, err)
		span.End()
	}
}

// noTrace ends no span: what appends use while tracing is off.
func noTrace(error) {}
