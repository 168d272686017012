package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/feed"
	"github.com/orderengine/engine/internal/metrics"
)

// worker delivers the feed to one endpoint, one event at a time in feed
// order: a checkpointed reader of the feed (the endpoint's position in
// Postgres), so each endpoint goes at its own pace. One goroutine does
// both the feed and the redeliveries, so that no event of an order can
// overtake another of the same order.
type worker struct {
	s         *Service
	ep        Endpoint
	secret    string
	redeliver chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}
	// pos is the last feed sequence handled; saved is what Postgres holds.
	pos, saved uint64
}

// checkpointEvery bounds how many filtered-out events go by before the
// position is written; a restart re-reads at most that many.
const checkpointEvery = 256

func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := w.work(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := time.Second
		if errors.Is(err, errLeasedElsewhere) {
			wait = leaseCheck // standing by: nothing failed
		} else {
			w.s.log.Warn("webhook worker failed; resuming from its position", "endpoint", w.ep.ID, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func (w *worker) work(ctx context.Context) error {
	lost, release, err := w.s.lease(ctx, w.ep.ID)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-lost:
			cancel()
		case <-ctx.Done():
		}
	}()
	ep, err := w.s.Get(ctx, w.ep.ID)
	if err != nil {
		return err
	}
	if w.secret, err = w.s.secretOf(ctx, ep.ID); err != nil {
		return err
	}
	w.ep, w.pos, w.saved = ep, ep.Position, ep.Position
	metrics.WebhookFeedPosition.WithLabelValues(ep.ID).Set(float64(w.pos))
	r, err := w.s.store.ReadFeed(ctx, w.pos+1, 64)
	if err != nil {
		return err
	}
	defer r.Stop()
	type next struct {
		e   eventstore.FeedEntry
		err error
	}
	entries := make(chan next)
	go func() {
		for {
			e, err := r.Next(ctx)
			select {
			case entries <- next{e, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return w.flush(context.WithoutCancel(ctx))
		case <-w.redeliver:
			if err := w.redeliverAll(ctx); err != nil {
				return err
			}
		case n := <-entries:
			if n.err != nil {
				return n.err
			}
			if err := w.handle(ctx, n.e); err != nil {
				return err
			}
			if n.e.Pending == 0 || w.pos-w.saved >= checkpointEvery {
				if err := w.flush(ctx); err != nil {
					return err
				}
			}
		}
	}
}

// flush writes the position when it moved.
func (w *worker) flush(ctx context.Context) error {
	if w.pos == w.saved {
		return nil
	}
	if _, err := w.s.pool.Exec(ctx, `UPDATE hooks.endpoints SET position = $2 WHERE id = $1 AND position < $2`, w.ep.ID, int64(w.pos)); err != nil {
		return errors.Wrap(err, "save webhook position")
	}
	w.saved = w.pos
	metrics.WebhookFeedPosition.WithLabelValues(w.ep.ID).Set(float64(w.pos))
	return nil
}

// handle delivers one feed entry, parks it behind a dead letter of its
// order, or dead-letters it; the position moves past it in every case
// but a cancellation.
func (w *worker) handle(ctx context.Context, e eventstore.FeedEntry) error {
	var ev feed.Event
	if err := json.Unmarshal(e.Data, &ev); err != nil || ev.ID == "" {
		w.s.log.Error("webhooks: feed message is not an event; skipped", "seq", e.Seq, "err", err)
		w.pos = e.Seq
		return nil
	}
	if !w.ep.wants(ev.Type) {
		w.pos = e.Seq
		return nil
	}
	var blocked bool
	err := w.s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM hooks.dead_letters WHERE endpoint_id = $1 AND order_id = $2)`,
		w.ep.ID, ev.OrderID).Scan(&blocked)
	if err != nil {
		return errors.Wrap(err, "look up dead letters")
	}
	if blocked {
		metrics.WebhookDeliveries.WithLabelValues(w.ep.ID, "parked").Inc()
		return w.fileDeadLetter(ctx, e.Seq, ev, e.Data, 0, "parked behind an earlier dead letter of order "+ev.OrderID, true)
	}
	attempts, err := w.deliver(ctx, ev, e.Data)
	if err == nil {
		metrics.WebhookDeliveries.WithLabelValues(w.ep.ID, "delivered").Inc()
		w.pos = e.Seq
		// Delivered is delivered, stopping or not: saving the position now
		// spares the receiver a duplicate after a clean restart.
		return w.flush(context.WithoutCancel(ctx))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	w.s.log.Warn("webhook delivery dead-lettered", "endpoint", w.ep.ID, "event", ev.ID, "attempts", attempts, "err", err)
	metrics.WebhookDeliveries.WithLabelValues(w.ep.ID, "dead_lettered").Inc()
	return w.fileDeadLetter(ctx, e.Seq, ev, e.Data, attempts, err.Error(), false)
}

// fileDeadLetter stores the event as a dead letter and moves the position
// past it, in one transaction.
func (w *worker) fileDeadLetter(ctx context.Context, seq uint64, ev feed.Event, body []byte, attempts int, lastErr string, parked bool) error {
	err := pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO hooks.dead_letters (endpoint_id, feed_seq, event_id, event_type, order_id, body, attempts, last_error, parked)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (endpoint_id, feed_seq) DO NOTHING`,
			w.ep.ID, int64(seq), ev.ID, ev.Type, ev.OrderID, string(body), attempts, clip(lastErr), parked); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE hooks.endpoints SET position = $2 WHERE id = $1 AND position < $2`, w.ep.ID, int64(seq))
		return err
	})
	if err != nil {
		return errors.Wrap(err, "file webhook dead letter")
	}
	w.pos, w.saved = seq, seq
	metrics.WebhookFeedPosition.WithLabelValues(w.ep.ID).Set(float64(seq))
	return nil
}

// redeliverAll tries every dead letter again in feed order. Once a letter
// of an order fails, the later ones of that order stay where they are.
func (w *worker) redeliverAll(ctx context.Context) error {
	dls, err := w.s.deadLetters(ctx, w.ep.ID)
	if err != nil {
		return err
	}
	failed := map[string]bool{}
	for _, d := range dls {
		if failed[d.OrderID] {
			continue
		}
		var ev feed.Event
		if err := json.Unmarshal(d.Event, &ev); err != nil {
			return errors.Wrapf(err, "dead letter %d", d.ID)
		}
		attempts, derr := w.deliver(ctx, ev, d.Event)
		if derr == nil {
			if _, err := w.s.pool.Exec(context.WithoutCancel(ctx), `DELETE FROM hooks.dead_letters WHERE id = $1`, d.ID); err != nil {
				return errors.Wrap(err, "remove redelivered dead letter")
			}
			metrics.WebhookDeliveries.WithLabelValues(w.ep.ID, "redelivered").Inc()
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failed[d.OrderID] = true
		_, err := w.s.pool.Exec(ctx, `UPDATE hooks.dead_letters SET attempts = attempts + $2, last_error = $3, parked = false, updated_at = now() WHERE id = $1`,
			d.ID, attempts, clip(derr.Error()))
		if err != nil {
			return errors.Wrap(err, "update webhook dead letter")
		}
		metrics.WebhookDeliveries.WithLabelValues(w.ep.ID, "dead_lettered").Inc()
	}
	return nil
}

// deliver posts body up to MaxAttempts times, waiting a jittered,
// exponentially growing time between attempts. It returns how many
// attempts it made and the last one's error, nil once one succeeded.
func (w *worker) deliver(ctx context.Context, ev feed.Event, body []byte) (int, error) {
	o := w.s.opts
	var last error
	for attempt := 1; attempt <= o.MaxAttempts; attempt++ {
		start := time.Now()
		last = w.post(ctx, ev, body)
		metrics.WebhookAttemptDuration.WithLabelValues(w.ep.ID).Observe(time.Since(start).Seconds())
		if last == nil {
			return attempt, nil
		}
		if ctx.Err() != nil {
			return attempt, ctx.Err()
		}
		metrics.WebhookDeliveries.WithLabelValues(w.ep.ID, "failed").Inc()
		if attempt == o.MaxAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return attempt, ctx.Err()
		case <-time.After(Backoff(o.BaseBackoff, o.MaxBackoff, attempt)):
		}
	}
	return o.MaxAttempts, errors.Wrapf(last, "after %d attempts", o.MaxAttempts)
}

// Backoff returns the wait after failed attempt n (from 1): full jitter,
// a uniformly random duration in [0, min(ceiling, base*2^(n-1))], so that
// endpoints coming back are not hit by every worker at once.
func Backoff(base, ceiling time.Duration, n int) time.Duration {
	d := ceiling
	if n-1 < 62 && base <= ceiling>>(n-1) {
		d = base << (n - 1)
	}
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// post makes one attempt; any 2xx answer is a delivery. An attempt under
// way when ctx ends (the engine stopping) runs to its answer or its
// timeout: cut short, the receiver may have taken the event without the
// engine knowing, and would get it again after the restart.
func (w *worker) post(ctx context.Context, ev feed.Event, body []byte) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.ep.URL, bytes.NewReader(body))
	if err != nil {
		return errors.Wrap(err, "build webhook request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "orderengine-webhooks/1")
	req.Header.Set(HeaderEventID, ev.ID)
	req.Header.Set(HeaderEventType, ev.Type)
	req.Header.Set(HeaderSignature, Sign(w.secret, w.s.opts.Now(), body))
	resp, err := w.s.client.Do(req)
	if err != nil {
		return errors.Wrap(err, "post webhook")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errors.Newf("endpoint answered %s", strconv.Itoa(resp.StatusCode))
	}
	return nil
}

// clip bounds an error text stored for the operator.
func clip(s string) string {
	if len(s) > 1000 {
		return s[:1000]
	}
	return s
}
