package eventstore

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ExpiryConsumer is the durable consumer of expiry timers.
const ExpiryConsumer = "expiries"

// dueHeader carries a timer's due time (RFC 3339).
const dueHeader = "Engine-Due"

const (
	// expiryConcurrency is how many due timers one process handles at
	// once. Each is a load, a decision and an append that waits for its
	// fsync; handled one by one they run at one fsync each (tens per second
	// on a slow disk), far below a flash sale's grants. Hundreds at once
	// meet in the group committer and share its fsyncs, ahead of commands
	// waiting to be admitted (UpdateOptions.Settle).
	expiryConcurrency = 256
	// expiryWaiting bounds the timers held until they are due.
	expiryWaiting = 2048
	// expiryHorizon is how far ahead of its due a timer is fetched.
	expiryHorizon = time.Second
	// expiryAckWait is how long a timer delivered to an instance that died
	// waits before it is delivered to another one: the hand-over stays
	// within five seconds. Timers held until due, and handling that takes
	// longer, are kept with in-progress acknowledgements every half of it.
	expiryAckWait = 4 * time.Second
	// expiryPurgeEvery is how often handled timers are removed. A purge
	// loads the blocks that hold them; nats-server keeps those loaded
	// while purges follow each other within a second.
	expiryPurgeEvery = 5 * time.Second
)

// expiryConsumerConfig is the expiry consumer of shard sh. It reads the
// whole stream, headers only, and passes over what sets no expiry: the
// worker needs the subject (the order id) and the due header of the order
// subjects' confirmations, and of the timers and fired schedules earlier
// versions stored. No subject filter, on purpose: with several filters
// nats-server finds each next message by intersecting the filters with
// every subject of the block (one per order here), which took 45% of the
// CPU in a soak; unfiltered, it reads the next message.
func expiryConsumerConfig(sh *shard) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ExpiryConsumer,
		HeadersOnly:   true,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       expiryAckWait,
		MaxAckPending: expiryWaiting + expiryConcurrency,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// ConsumeExpiries calls handle with the order id of every expiry timer once
// it is due, up to 256 at once, until ctx ends; then it returns once the
// handlers running have finished. handle returns how long to wait before
// trying again when the order is not due yet, or an error to retry later;
// otherwise the timer is done, and removed from the stream soon after.
// Several processes share the consumer.
//
// Timers are not JetStream message schedules: the server stores each fired
// schedule, and removes the schedule, one fsync at a time, which caps
// expiries far below a flash sale's grants. Nor are they messages of their
// own any more: a confirmation carries its due in its message's Engine-Due
// header, so the worker reads the order subjects (headers only) and passes
// over every event without one. Confirmations are stored in about the
// order of their dues (one TTL after their grants), so the consumer's
// stream order is the due order: the worker fetches until the next due is
// more than a second ahead, holds those until due (at most 2,048), and
// hands each to handle when its time comes. One that is out of order (the
// TTL was shortened between two runs, or a grant waited long for its
// confirmation) waits for those before it. Timers stored by earlier
// versions (timer.<order_id>) are read the same way, and their fired
// schedules (expire.<order_id>) are due at once.
// Every shard has its consumer, worked at once (each with up to 256 in
// hand).
func (s *Store) ConsumeExpiries(ctx context.Context, log *slog.Logger, handle func(ctx context.Context, orderID string) (retryIn time.Duration, err error)) error {
	return s.perShard(func(sh *shard) error { return s.consumeExpiries(ctx, sh, log, handle) })
}

func (s *Store) consumeExpiries(ctx context.Context, sh *shard, log *slog.Logger, handle func(ctx context.Context, orderID string) (retryIn time.Duration, err error)) error {
	cons, err := retryCreate(ctx, log, func() (jetstream.Consumer, error) {
		return s.js.CreateOrUpdateConsumer(ctx, sh.stream, expiryConsumerConfig(sh))
	})
	if err != nil || cons == nil {
		return err
	}
	held := newInflight()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { held.keepAlive(ctx, expiryAckWait/2) })
	if s.hasLegacyTimers(ctx, sh) {
		wg.Go(func() { s.purgeHandledTimers(ctx, sh, log) })
	}
	slots := make(chan struct{}, expiryConcurrency)
	var waiting []timer
	var ahead time.Time // due of the last timer fetched
	// size adapts each fetch to the rate timers come due at: it doubles
	// while a whole fetch is due within the horizon and halves when one
	// reaches past it, so a quiet shop holds a few timers (each of them
	// acknowledged as in progress every two seconds) and a sale many.
	size := 16
	for ctx.Err() == nil {
		now := time.Now()
		waiting = dispatchDue(waiting, now, func(t timer) {
			slots <- struct{}{}
			s.late.started(t.due)
			wg.Go(func() {
				defer func() { held.remove(t.msg); <-slots }()
				handleExpiry(ctx, log, t.msg, handle)
			})
		})
		if len(waiting) >= expiryWaiting || ahead.After(now.Add(expiryHorizon)) {
			wait := min(100*time.Millisecond, ahead.Sub(now.Add(expiryHorizon)))
			if len(waiting) > 0 {
				wait = min(wait, time.Until(earliest(waiting)))
			}
			sleep(ctx, max(wait, 5*time.Millisecond))
			continue
		}
		msgs := fetch(cons, min(size, expiryWaiting-len(waiting)), 100*time.Millisecond, nil)
		for _, m := range msgs {
			if !isTimer(sh, m) {
				// An order event that sets no expiry: passed over.
				_ = m.Ack()
				continue
			}
			t := timer{msg: m, due: dueOf(m)}
			held.add(m)
			waiting = append(waiting, t)
			ahead = t.due
		}
		switch {
		case len(msgs) == 0:
		case ahead.After(now.Add(expiryHorizon)):
			size = max(16, size/2)
		case len(msgs) == size:
			size = min(512, 2*size)
		}
	}
	return nil
}

// timer is a delivered expiry timer and its due time.
type timer struct {
	msg jetstream.Msg
	due time.Time
}

// isTimer says whether m, a message of shard sh, sets an expiry: a
// confirmation (its due in the header), or a timer or fired schedule of an
// earlier version.
func isTimer(sh *shard, m jetstream.Msg) bool {
	kind, _, _ := strings.Cut(sh.logical(m.Subject()), ".")
	switch kind {
	case TimerSubjects, ExpirySubjects:
		return true
	case OrderSubjects:
		h := m.Headers()
		return h != nil && h.Get(dueHeader) != ""
	}
	return false // inventory, reservation requests, idempotency records
}

// dueOf reads a timer's due time; a fired schedule of an earlier version,
// or a timer without a readable due, is due now.
func dueOf(m jetstream.Msg) time.Time {
	if h := m.Headers(); h != nil {
		if due, err := time.Parse(time.RFC3339Nano, h.Get(dueHeader)); err == nil {
			return due
		}
	}
	return time.Now()
}

// dispatchDue hands run every timer due at now and returns the others, in
// their order.
func dispatchDue(waiting []timer, now time.Time, run func(timer)) []timer {
	rest := waiting[:0]
	for _, t := range waiting {
		if t.due.After(now) {
			rest = append(rest, t)
			continue
		}
		run(t)
	}
	clear(waiting[len(rest):])
	return rest
}

func earliest(ts []timer) time.Time {
	e := ts[0].due
	for _, t := range ts[1:] {
		if t.due.Before(e) {
			e = t.due
		}
	}
	return e
}

func handleExpiry(ctx context.Context, log *slog.Logger, m jetstream.Msg, handle func(context.Context, string) (time.Duration, error)) {
	// orders.<id>, timer.<id>, expire.<id>, or any of them behind a shard
	// prefix: an order id is a token.
	id := m.Subject()
	id = id[strings.LastIndexByte(id, '.')+1:]
	retry, err := handle(ctx, id)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			log.Warn("expiry failed, will retry", "order_id", id, "err", err)
		}
		_ = m.NakWithDelay(time.Second)
	case retry > 0:
		_ = m.NakWithDelay(retry)
	default:
		_ = m.Ack()
	}
}

// inflight is the set of messages held or being handled, with when each
// was last acknowledged as in progress (or delivered), which keepAlive
// keeps from being redelivered to another instance.
type inflight struct {
	mu   sync.Mutex
	msgs map[jetstream.Msg]time.Time
}

func newInflight() *inflight { return &inflight{msgs: map[jetstream.Msg]time.Time{}} }

func (f *inflight) add(m jetstream.Msg) {
	f.mu.Lock()
	f.msgs[m] = time.Now()
	f.mu.Unlock()
}

func (f *inflight) remove(m jetstream.Msg) {
	f.mu.Lock()
	delete(f.msgs, m)
	f.mu.Unlock()
}

// keepAlive sends, every period/2 until ctx ends, an in-progress
// acknowledgement for every message in hand not acknowledged so for a
// period: timers due within a second, the many of a sale, need none.
func (f *inflight) keepAlive(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f.mu.Lock()
			for m, last := range f.msgs {
				if now.Sub(last) >= period {
					_ = m.InProgress()
					f.msgs[m] = now
				}
			}
			f.mu.Unlock()
		}
	}
}
