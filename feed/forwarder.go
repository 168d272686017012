package feed

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/metrics"
)

// Forwarder reads the order events of every shard of the event store and
// publishes their integration events into the feed stream. It is a reader
// beside the projections: the write path does not wait for it.
//
// It keeps no state of its own: every message it publishes carries its
// position in every shard (HeaderSource), and the batches are atomic, so
// the feed's last message says where to resume after a restart or a
// failure. Events of one order live on one shard and are read in order,
// so the feed holds each order's events in order.
type Forwarder struct {
	Store *eventstore.Store
	Log   *slog.Logger
	// Batch is the most events per atomic publish (DefaultBatch when 0).
	Batch int
	// Linger is how long a batch waits for more events after its first
	// (DefaultLinger when 0; no wait when negative).
	Linger time.Duration
	// RetryWait is the first wait after a failed round, doubled up to a
	// minute while rounds keep failing (time.Second when 0).
	RetryWait time.Duration
	// Yield, when set, says whether the write path needs the machine (the
	// reservation processors or the expiry worker run behind). While it
	// does, the forwarder reads and publishes nothing, looking again every
	// yieldPoll: the feed promises no delay (docs/feed.md), while a buyer
	// refused for a reservation backlog, or stock held past its expiry,
	// is a sale lost.
	Yield func() bool
}

// yieldPoll is how often a yielding forwarder asks Yield again.
const yieldPoll = 100 * time.Millisecond

// yield waits while f.Yield says the write path needs the machine; it
// returns ctx's error if ctx ends meanwhile.
func (f *Forwarder) yield(ctx context.Context) error {
	if f.Yield == nil || !f.Yield() {
		return nil
	}
	metrics.FeedYielding.Set(1)
	defer metrics.FeedYielding.Set(0)
	start := time.Now()
	t := time.NewTicker(yieldPoll)
	defer t.Stop()
	for f.Yield() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if d := time.Since(start); d >= time.Second {
		f.Log.Info("feed forwarder resumes: it yielded to the write path", "for", d.Round(time.Millisecond).String())
	}
	return nil
}

// DefaultBatch is the forwarder's batch bound when Forwarder.Batch is 0.
const DefaultBatch = eventstore.MaxFeedBatch

// DefaultLinger is Forwarder.Linger when 0. Every atomic batch costs the
// server a fixed ~3 ms of disk work (it stages the batch in a file store
// of its own; eventstore's BenchmarkAtomicBatchSize), so a forwarder that
// publishes whatever has arrived, one batch right after the other, makes
// under a flash sale's ~7,000 events/s a batch of a few dozen events every
// few milliseconds, more batches than the event store itself makes, on the
// same disk. Waiting a tenth of a second fills them: a feed reader hears
// of an event up to that much later.
const DefaultLinger = 100 * time.Millisecond

// Run forwards until ctx ends, resuming after every failure from the
// feed's last message; it returns nil when ctx ends.
func (f *Forwarder) Run(ctx context.Context) error {
	wait := f.RetryWait
	if wait <= 0 {
		wait = time.Second
	}
	next := wait
	for {
		forwarded, err := f.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, domain.ErrConflict) {
			// Another engine's forwarder stored a batch first: not a
			// failure, and this one stays behind it until it stops.
			f.Log.Debug("another forwarder is ahead; resuming from the feed's last message", "retry_in", next.String())
		} else {
			metrics.FeedErrors.Inc()
			f.Log.Warn("feed forwarder failed; resuming from the feed's last message", "err", err, "retry_in", next.String())
		}
		if forwarded {
			next = wait
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(next):
		}
		next = min(2*next, time.Minute)
	}
}

// shardEvent is an event read from one shard.
type shardEvent struct {
	ev  eventstore.StoredEvent
	err error
}

// round resumes from the feed's last message and forwards until something
// fails; forwarded tells whether it published anything first.
func (f *Forwarder) round(ctx context.Context) (forwarded bool, err error) {
	if err := f.Store.OpenFeed(ctx); err != nil {
		return false, err
	}
	pos, last, err := f.resume(ctx)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan shardEvent, 1024)
	pending := make([]uint64, len(pos))
	for k := range pos {
		sub, err := f.Store.SubscribeOrders(ctx, k, pos[k]+1, 512)
		if err != nil {
			return false, err
		}
		defer sub.Stop()
		pending[k] = sub.Pending()
		go func() {
			for {
				ev, err := sub.Next(ctx)
				select {
				case events <- shardEvent{ev: ev, err: err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	batchMax := f.Batch
	if batchMax <= 0 || batchMax > eventstore.MaxFeedBatch {
		batchMax = DefaultBatch
	}
	batch := make([]eventstore.FeedMessage, 0, batchMax)
	for {
		// Before reading on: what it has not read stays in the store.
		if err := f.yield(ctx); err != nil {
			return forwarded, err
		}
		var first shardEvent
		select {
		case first = <-events:
		case <-ctx.Done():
			return forwarded, ctx.Err()
		}
		batch = batch[:0]
		add := func(se shardEvent) error {
			if se.err != nil {
				return se.err
			}
			ev := se.ev
			pos[ev.Pos.Shard] = ev.Pos.Seq
			pending[ev.Pos.Shard] = ev.Pending
			env, err := eventstore.DecodeEnvelope(ev.Data)
			if err != nil {
				return errors.Wrapf(err, "shard %d seq %d", ev.Pos.Shard, ev.Pos.Seq)
			}
			out, ok, err := Translate(env)
			if err != nil || !ok {
				return err
			}
			body, err := json.Marshal(out)
			if err != nil {
				return errors.Wrap(err, "encode integration event")
			}
			batch = append(batch, eventstore.FeedMessage{Subject: Subject(out), ID: out.ID, Data: body, Header: map[string]string{
				HeaderType: out.Type, HeaderVersion: strconv.Itoa(out.Version), HeaderSource: encodePositions(pos),
			}})
			return nil
		}
		if err := add(first); err != nil {
			return forwarded, err
		}
		linger := f.Linger
		if linger == 0 {
			linger = DefaultLinger
		}
		deadline := time.NewTimer(max(linger, 0))
	fill:
		for len(batch) < batchMax {
			select {
			case se := <-events:
				if err := add(se); err != nil {
					deadline.Stop()
					return forwarded, err
				}
				continue
			default:
			}
			if linger < 0 {
				break
			}
			select {
			case se := <-events:
				if err := add(se); err != nil {
					deadline.Stop()
					return forwarded, err
				}
			case <-deadline.C:
				break fill
			case <-ctx.Done():
				deadline.Stop()
				return forwarded, ctx.Err()
			}
		}
		deadline.Stop()
		var lag uint64
		for _, p := range pending {
			lag += p
		}
		metrics.FeedPending.Set(float64(lag))
		if len(batch) == 0 {
			continue
		}
		if last, err = f.Store.PublishFeed(ctx, batch, last); err != nil {
			return forwarded, err
		}
		forwarded = true
		metrics.FeedPublished.Add(float64(len(batch)))
	}
}

// resume returns, per shard, the last event-store sequence whose event is
// in the feed (0: none), from the feed's last message, and that message's
// sequence in the feed (0: the feed is empty), which the next batch
// expects.
func (f *Forwarder) resume(ctx context.Context) ([]uint64, uint64, error) {
	pos := make([]uint64, f.Store.Shards())
	last, ok, err := f.Store.LastFeedEntry(ctx)
	if err != nil || !ok {
		return pos, 0, err
	}
	src := last.Header.Get(HeaderSource)
	if err := decodePositions(src, pos); err != nil {
		return nil, 0, errors.Wrapf(err, "feed message %d", last.Seq)
	}
	return pos, last.Seq, nil
}

// encodePositions writes pos as "0:12,1:40".
func encodePositions(pos []uint64) string {
	var b strings.Builder
	for k, seq := range pos {
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(k))
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(seq, 10))
	}
	return b.String()
}

// decodePositions reads what encodePositions wrote into pos.
func decodePositions(s string, pos []uint64) error {
	if s == "" {
		return errors.Newf("no %s header", HeaderSource)
	}
	for _, part := range strings.Split(s, ",") {
		ks, ss, ok := strings.Cut(part, ":")
		k, kerr := strconv.Atoi(ks)
		seq, serr := strconv.ParseUint(ss, 10, 64)
		if !ok || kerr != nil || serr != nil || k < 0 {
			return errors.Newf("bad %s header %q", HeaderSource, s)
		}
		if k >= len(pos) {
			return errors.Newf("%s header %q names shard %d of a store of %d", HeaderSource, s, k, len(pos))
		}
		pos[k] = seq
	}
	return nil
}
