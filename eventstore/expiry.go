package eventstore

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go/jetstream"
)

// ExpiryConsumer is the durable consumer of fired expiry timers.
const ExpiryConsumer = "expiries"

const (
	// expiryConcurrency is how many fired timers one process handles at
	// once. Each is a load, a decision and an append that waits for its
	// fsync; handled one by one they run at one fsync each (tens per second
	// on a slow disk), far below a flash sale's grants. Hundreds at once
	// meet in the group committer and share its fsyncs.
	expiryConcurrency = 256
	// expiryAckWait is how long a fired timer delivered to an instance that
	// died waits before it is delivered to another one: the hand-over stays
	// within five seconds. Handling that takes longer keeps its timer with
	// in-progress acknowledgements every half of it.
	expiryAckWait = 4 * time.Second
)

var expiryConsumerConfig = jetstream.ConsumerConfig{
	Durable:       ExpiryConsumer,
	FilterSubject: ExpirySubjects + ".*",
	AckPolicy:     jetstream.AckExplicitPolicy,
	AckWait:       expiryAckWait,
	MaxAckPending: 4 * expiryConcurrency,
	MaxDeliver:    -1,
	DeliverPolicy: jetstream.DeliverAllPolicy,
}

// ConsumeExpiries calls handle with the order id of every fired expiry
// timer, up to 256 at once, until ctx ends; then it returns once the
// handlers running have finished. handle returns how long to wait before
// trying again when the order is not due yet, or an error to retry later;
// otherwise the timer is done. Several processes share the consumer.
func (s *Store) ConsumeExpiries(ctx context.Context, log *slog.Logger, handle func(ctx context.Context, orderID string) (retryIn time.Duration, err error)) error {
	cons, err := retryCreate(ctx, log, func() (jetstream.Consumer, error) {
		return s.js.CreateOrUpdateConsumer(ctx, s.stream, expiryConsumerConfig)
	})
	if err != nil || cons == nil {
		return err
	}
	inflight := newInflight()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { inflight.keepAlive(ctx, expiryAckWait/2) })
	slots := make(chan struct{}, expiryConcurrency)
	for ctx.Err() == nil {
		slots <- struct{}{} // one free slot for the first message
		msgs := pullBatch(cons, 1+cap(slots)-len(slots), nil)
		if len(msgs) == 0 {
			<-slots
			continue
		}
		for i, m := range msgs {
			if i > 0 {
				slots <- struct{}{}
			}
			inflight.add(m)
			wg.Go(func() {
				defer func() { inflight.remove(m); <-slots }()
				s.handleExpiry(ctx, log, m, handle)
			})
		}
	}
	return nil
}

// handleExpiry handles one fired timer; once it is done, it removes the
// timer's message from the stream before acknowledging it. Kept, every
// order ever confirmed would leave an expire.<order_id> subject behind,
// and nats-server keeps an index entry in memory per subject. A removal
// that fails only leaves the message behind; a redelivery of a removed
// message is skipped by the server.
func (s *Store) handleExpiry(ctx context.Context, log *slog.Logger, m jetstream.Msg, handle func(context.Context, string) (time.Duration, error)) {
	id := strings.TrimPrefix(m.Subject(), ExpirySubjects+".")
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
		if meta, err := m.Metadata(); err == nil {
			if err := s.removeMsg(ctx, meta.Sequence.Stream); err != nil && ctx.Err() == nil {
				log.Warn("cannot remove a handled expiry timer", "order_id", id, "err", err)
			}
		}
		_ = m.Ack()
	}
}

// removeMsg removes the message at seq from the stream (without erasing
// its bytes: nothing secret is in it).
func (s *Store) removeMsg(ctx context.Context, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, _ := json.Marshal(struct {
		Seq     uint64 `json:"seq"`
		NoErase bool   `json:"no_erase"`
	}{seq, true})
	resp, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.DELETE."+s.stream, req)
	if err != nil {
		return errors.Wrap(unavailable(err), "remove a message")
	}
	var answer struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &answer); err != nil {
		return errors.Wrap(err, "decode the answer to a message removal")
	}
	if !answer.Success && answer.Error != nil {
		return errors.Newf("remove message %d: %s", seq, answer.Error.Description)
	}
	return nil
}

// inflight is the set of messages being handled, which keepAlive keeps
// from being redelivered while their handling takes longer than AckWait.
type inflight struct {
	mu   sync.Mutex
	msgs map[jetstream.Msg]struct{}
}

func newInflight() *inflight { return &inflight{msgs: map[jetstream.Msg]struct{}{}} }

func (f *inflight) add(m jetstream.Msg) {
	f.mu.Lock()
	f.msgs[m] = struct{}{}
	f.mu.Unlock()
}

func (f *inflight) remove(m jetstream.Msg) {
	f.mu.Lock()
	delete(f.msgs, m)
	f.mu.Unlock()
}

// keepAlive sends an in-progress acknowledgement for every message in
// hand every period until ctx ends.
func (f *inflight) keepAlive(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		for m := range f.msgs {
			_ = m.InProgress()
		}
		f.mu.Unlock()
	}
}

// ExpiryBacklog returns how many fired expiry timers are not handled yet
// (not delivered, or delivered and not acknowledged) and how long ago the
// oldest of them fired: an expiry worker that does not keep up shows here
// before it shows as stock held past its TTL. Both are zero when nothing
// waits or the expiry consumer was not created yet.
func (s *Store) ExpiryBacklog(ctx context.Context) (n uint64, oldest time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cons, err := s.js.Consumer(ctx, s.stream, ExpiryConsumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, errors.Wrap(unavailable(err), "read the expiry consumer")
	}
	info := cons.CachedInfo()
	n = info.NumPending + uint64(info.NumAckPending)
	if n == 0 {
		return 0, 0, nil
	}
	// Everything up to the ack floor is handled: the first fired timer
	// after it is the oldest one waiting.
	m, ok, err := s.nextMsg(ctx, ExpirySubjects+".*", info.AckFloor.Stream+1)
	if err != nil || !ok {
		return n, 0, err
	}
	return n, max(0, time.Since(m.Time)), nil
}
