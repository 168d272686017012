package eventstore

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consumeLoop fetches batches from cons and hands them to handle until ctx
// ends, acknowledging each batch after handle succeeded and asking for its
// redelivery otherwise. While handle runs, every message of the batch is
// reported in progress a few times per ack wait, so the short ack wait that
// makes a dead process's batch come back within seconds does not take a
// long batch away from a live one.
func consumeLoop(ctx context.Context, cons jetstream.Consumer, log *slog.Logger, size int, opts []jetstream.FetchOpt,
	handle func(context.Context, []jetstream.Msg) error) error {
	cfg := cons.CachedInfo().Config
	ackAll := cfg.AckPolicy == jetstream.AckAllPolicy
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		msgs := pullBatch(cons, size, opts)
		if len(msgs) == 0 {
			continue
		}
		stop := keepInProgress(msgs, cfg.AckWait/progressPerAckWait)
		err := handle(ctx, msgs)
		stop()
		if err != nil {
			// Failing because of a shutdown is no trouble to report: the
			// batch is redelivered all the same.
			if ctx.Err() == nil {
				log.Warn("batch failed, asking for redelivery", "err", err, "messages", len(msgs))
			}
			for _, m := range msgs {
				_ = m.Nak()
			}
			sleep(ctx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if ackAll {
			// One ack covers the batch, and it need not be waited for: an
			// AckAll consumer's handler knows from the deliveries'
			// consumer sequences whether anything came in between
			// (ConsumeReservations), and a lost ack only brings the batch
			// back, decided already. Waiting cost the reservation
			// processor a tenth of its cycle under load.
			_ = msgs[len(msgs)-1].Ack()
			continue
		}
		for _, m := range msgs[:len(msgs)-1] {
			_ = m.Ack()
		}
		// Waiting for the last ack keeps the next fetch behind this batch.
		_ = msgs[len(msgs)-1].DoubleAck(ctx)
	}
	return nil
}

// progressPerAckWait is how many in-progress reports a batch being handled
// sends per ack wait: one lost or late report still leaves time for the
// next before the server would redeliver.
const progressPerAckWait = 4

// keepInProgress reports every message of msgs in progress each period
// until stop is called, which waits for a report under way to finish. The
// server keeps an ack timer per message, even under AckAll, so each one
// needs its report. A batch handled within the first period sends nothing.
func keepInProgress(msgs []jetstream.Msg, period time.Duration) (stop func()) {
	if period <= 0 {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				for _, m := range msgs {
					// Fire and forget: a report that fails (connection lost)
					// means the batch will be redelivered, which is safe.
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// pullBatch returns up to size messages without making a busy consumer wait
// for a full batch: it takes what is there (waiting at most a couple of
// milliseconds), and when nothing is, waits up to a second for the first
// message and then takes what came with it. While each pull brings many
// (a backlog), it pulls again at once, up to size: a pull ends after its
// couple of milliseconds however many are waiting, and on a loaded machine
// the server gathers only some hundreds in that time. In a long sale on
// two cores (800 orders/s, every grant released by expiry) the processor
// took batches of ~250 of a 2,000–4,000 backlog, one every ~160 ms, and
// kept up with nothing to spare until orders were refused for a full
// backlog. Every pull request runs to its end before the next, so a
// message is left delivered to a request nobody reads only when the
// client gave up on the server (it comes back after the ack wait, out of
// order: ConsumeReservations allows for that).
func pullBatch(cons jetstream.Consumer, size int, opts []jetstream.FetchOpt) []jetstream.Msg {
	msgs := fetch(cons, size, 2*time.Millisecond, opts)
	last := len(msgs)
	if last == 0 {
		msgs = fetch(cons, 1, time.Second, opts)
		if len(msgs) == 0 || size == 1 {
			return msgs
		}
		more := fetch(cons, size-1, 2*time.Millisecond, opts)
		msgs, last = append(msgs, more...), len(more)
	}
	for last >= backlogPull && len(msgs) < size {
		more := fetch(cons, size-len(msgs), 2*time.Millisecond, opts)
		msgs, last = append(msgs, more...), len(more)
	}
	return msgs
}

// backlogPull is how many messages one pull must bring for pullBatch to
// pull again: a trickle's pull brings a few, and must not wait for more.
const backlogPull = 64

func fetch(cons jetstream.Consumer, n int, wait time.Duration, opts []jetstream.FetchOpt) []jetstream.Msg {
	batch, err := cons.Fetch(n, append(opts, jetstream.FetchMaxWait(wait))...)
	if err != nil {
		time.Sleep(wait)
		return nil
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	return msgs
}

// retryCreate calls create until it succeeds or ctx ends (then it returns
// nil, nil: a shutdown is not an error), so workers started while JetStream
// is unreachable come up once it is back.
func retryCreate(ctx context.Context, log *slog.Logger, create func() (jetstream.Consumer, error)) (jetstream.Consumer, error) {
	backoff := 100 * time.Millisecond
	for {
		cons, err := create()
		if err == nil {
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		log.Warn("cannot set up a consumer yet, retrying", "err", err, "in", backoff)
		sleep(ctx, backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
