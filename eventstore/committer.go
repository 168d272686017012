package eventstore

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/tracing"
)

// maxBatchMsgs stays under the server's default atomic batch limit (1000).
const maxBatchMsgs = 1000

// pending is one command's messages waiting to be committed. They are stored
// all together or not at all.
type pending struct {
	subject string // the aggregate subject; one pending per subject per batch
	// riders are the other aggregate subjects the command appends to in
	// the same batch (Rider): they count as taken like subject.
	riders []string
	msgs   []*nats.Msg
	settle bool // goes before the others (UpdateOptions.Settle)
	done   chan commitResult
	// span is the command's append (nil while tracing is off): the
	// batch's commit span links to it.
	span trace.Span
}

type commitResult struct {
	firstSeq uint64 // stream sequence of msgs[0]
	err      error
}

// committer is the group commit: concurrent appends are gathered into one
// JetStream atomic batch, which the server stores with a single fsync. Under
// light load a batch holds one command and adds no latency; under heavy load
// a batch holds everything that arrived while the previous one was in flight.
type committer struct {
	nc      *nats.Conn
	watch   *connWatch
	stream  string
	timeout time.Duration
	in      chan *pending
	settle  chan *pending // served before in
	stop    chan struct{}
	drained chan struct{} // closed once close has answered every queued command
	wg      sync.WaitGroup

	batches, msgs atomic.Uint64 // published, for metrics and benchmarks
	byKind        [len(messageKinds)]atomic.Uint64
	lastGroup     atomic.Int64 // commands in the last batch: >1 means busy

	lingerGap, lingerMax time.Duration // see DefaultLinger
	maxBatch             int
}

// CommitStats counts what the group committer published.
type CommitStats struct {
	Batches, Messages uint64
	// ByKind splits Messages by what they are: "orders" and "inventory"
	// events, "resv" reservation requests, "idem" idempotency records,
	// "timer" expiry timers, "other".
	ByKind map[string]uint64
}

// messageKinds are the subject prefixes CommitStats.ByKind tells apart.
var messageKinds = [...]string{OrderSubjects, InventorySubjects, ReservationSubjects, IdemSubjects, TimerSubjects, "other"}

// kindOf returns the index in messageKinds of a subject's kind: its first
// token that names one.
func kindOf(subject string) int {
	for tok := range strings.SplitSeq(subject, ".") {
		for i, k := range messageKinds[:len(messageKinds)-1] {
			if tok == k {
				return i
			}
		}
	}
	return len(messageKinds) - 1
}

// CommitStats reports how many publishes (batches) carried how many messages
// since the store was opened, over all shards.
func (s *Store) CommitStats() CommitStats {
	st := CommitStats{ByKind: map[string]uint64{}}
	for _, sh := range s.shards {
		st.Batches += sh.commit.batches.Load()
		st.Messages += sh.commit.msgs.Load()
		for i, k := range messageKinds {
			st.ByKind[k] += sh.commit.byKind[i].Load()
		}
	}
	return st
}

func newCommitter(nc *nats.Conn, watch *connWatch, stream string, workers int, timeout time.Duration) *committer {
	c := &committer{nc: nc, watch: watch, stream: stream, timeout: timeout, in: make(chan *pending, 4096),
		settle: make(chan *pending, 4096), stop: make(chan struct{}), drained: make(chan struct{}),
		lingerGap: lingerGap, lingerMax: DefaultLinger, maxBatch: maxBatchMsgs}
	for range workers {
		c.wg.Add(1)
		go c.run()
	}
	return c
}

// submit hands p to the committer and waits for its outcome. Once handed
// over it waits for the answer even if ctx ends, because the batch may
// already be on its way and the caller must learn whether it was stored.
// While the connection is down it fails at once: nothing was sent.
func (c *committer) submit(ctx context.Context, p *pending) commitResult {
	if !c.nc.IsConnected() {
		return commitResult{err: errNotConnected}
	}
	p.done = make(chan commitResult, 1)
	in := c.in
	if p.settle {
		in = c.settle
	}
	select {
	case in <- p:
	case <-ctx.Done():
		return commitResult{err: errors.Wrap(ctx.Err(), "append not started")}
	case <-c.stop:
		return commitResult{err: errClosed()}
	}
	select {
	case r := <-p.done:
		return r
	case <-c.drained:
		// A submit racing close can put p in a queue after close emptied
		// it, with no worker left to answer: then nothing was sent.
		select {
		case r := <-p.done:
			return r
		default:
			return commitResult{err: errClosed()}
		}
	}
}

func errClosed() error {
	return errors.Mark(errors.New("event store is closed"), domain.ErrUnavailable)
}

// close stops the workers once their batches in flight are answered, and
// answers every command still queued.
func (c *committer) close() {
	close(c.stop)
	c.wg.Wait()
	defer close(c.drained)
	for {
		select {
		case p := <-c.settle:
			p.done <- commitResult{err: errClosed()}
		case p := <-c.in:
			p.done <- commitResult{err: errClosed()}
		default:
			return
		}
	}
}

// queued returns a waiting command without blocking, settling work first.
func (c *committer) queued() (*pending, bool) {
	select {
	case p := <-c.settle:
		return p, true
	default:
	}
	select {
	case p := <-c.settle:
		return p, true
	case p := <-c.in:
		return p, true
	default:
		return nil, false
	}
}

func (c *committer) run() {
	defer c.wg.Done()
	var carry []*pending
	for {
		var first *pending
		if len(carry) > 0 {
			first, carry = carry[0], carry[1:]
		} else if p, ok := c.queued(); ok {
			first = p
		} else {
			select {
			case first = <-c.settle:
			case first = <-c.in:
			case <-c.stop:
				return
			}
		}
		group, rest := c.gather(first, carry)
		carry = rest
		c.commitGroup(group)
	}
}

// lingerGap and lingerMax bound how long a busy committer waits for more
// commands before it publishes: it stops when none arrived for lingerGap, or
// after lingerMax in all. An atomic batch costs the server a fixed amount of
// disk work (it stages the batch in a store of its own, created and removed
// per batch), so while commands arrive in numbers a short wait that doubles
// the batch halves that cost per command. An idle committer does not wait.
const (
	lingerGap = 300 * time.Microsecond
	// DefaultLinger is lingerMax unless Options.Linger says otherwise:
	// 3 ms by measurement (BENCHMARKS.md, "Group commit linger"), where
	// 1 ms made smaller batches and fewer orders/s at 64 and 256 clients.
	DefaultLinger = 3 * time.Millisecond
)

// tune sets the linger and batch bounds (Options.Linger, MaxBatch) before
// the first command arrives.
func (c *committer) tune(linger time.Duration, maxBatch int) {
	switch {
	case linger < 0:
		c.lingerMax, c.lingerGap = 0, 0
	case linger > 0:
		c.lingerMax, c.lingerGap = linger, min(lingerGap, linger)
	}
	if maxBatch > 0 {
		c.maxBatch = min(maxBatch, maxBatchMsgs)
	}
}

// gather builds a batch starting with first: carried-over requests first,
// then whatever is queued. A second command for a subject already in the
// batch waits for the next batch, since both were decided against the same
// last sequence and at most one of them can succeed.
func (c *committer) gather(first *pending, carry []*pending) (group, rest []*pending) {
	group = []*pending{first}
	subjects := map[string]struct{}{}
	first.take(subjects)
	n := len(first.msgs)
	take := func(p *pending) {
		if p.collides(subjects) || n+len(p.msgs) > c.maxBatch {
			rest = append(rest, p)
			return
		}
		p.take(subjects)
		group = append(group, p)
		n += len(p.msgs)
	}
	for _, p := range carry {
		take(p)
	}
	busy := c.lastGroup.Load() > 1
	var deadline time.Time
	for n < c.maxBatch && len(rest) < 256 {
		if p, ok := c.queued(); ok {
			take(p)
			continue
		}
		if !busy {
			break
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(c.lingerMax)
		}
		wait := min(c.lingerGap, time.Until(deadline))
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case p := <-c.settle:
			t.Stop()
			take(p)
			continue
		case p := <-c.in:
			t.Stop()
			take(p)
			continue
		case <-t.C:
		}
		break
	}
	c.lastGroup.Store(int64(len(group)))
	return group, rest
}

// collides reports whether p appends to a subject already in taken.
func (p *pending) collides(taken map[string]struct{}) bool {
	if _, dup := taken[p.subject]; dup {
		return true
	}
	for _, r := range p.riders {
		if _, dup := taken[r]; dup {
			return true
		}
	}
	return false
}

// take marks p's subjects as taken.
func (p *pending) take(taken map[string]struct{}) {
	taken[p.subject] = struct{}{}
	for _, r := range p.riders {
		taken[r] = struct{}{}
	}
}

// commitGroup stores the group atomically. If the batch is refused (one
// member's expected sequence is stale, say) the group is split in halves and
// each half retried, so only the member at fault fails and a single bad
// member costs a logarithmic number of extra batches. When JetStream is
// unreachable, or its answer was lost, no member is at fault: the whole
// group fails at once, so that its callers hear of it the moment the
// connection is lost rather than after a retry per half.
func (c *committer) commitGroup(group []*pending) {
	var msgs []*nats.Msg
	for _, p := range group {
		msgs = append(msgs, p.msgs...)
	}
	end := noTrace
	if tracing.Enabled() {
		end = traceCommit(group, len(msgs))
	}
	first, err := c.publish(msgs)
	end(err)
	if err != nil && len(group) > 1 && errors.Is(err, errRefused) {
		c.commitGroup(group[:len(group)/2])
		c.commitGroup(group[len(group)/2:])
		return
	}
	off := uint64(0)
	for _, p := range group {
		p.done <- commitResult{firstSeq: first + off, err: err}
		off += uint64(len(p.msgs))
	}
}

// errRefused marks a batch JetStream answered with a refusal, which one
// member of a group may have caused.
var errRefused = errors.New("batch refused")

// pubResponse is JetStream's answer to a publish or a batch commit.
type pubResponse struct {
	Seq       uint64              `json:"seq"`
	Duplicate bool                `json:"duplicate"`
	Count     uint64              `json:"count"`
	Error     *jetstream.APIError `json:"error"`
}

// publish stores msgs as one atomic batch (a lone message as a plain
// publish) and returns the stream sequence of the first one.
func (c *committer) publish(msgs []*nats.Msg) (uint64, error) {
	if !c.nc.IsConnected() {
		// Fail now rather than queue the batch for a reconnect that may come
		// after the caller gave up: the client gets a 503 and retries.
		return 0, errNotConnected
	}
	// Ends at the timeout, or at once when the connection is lost: the
	// acknowledgement cannot come over another connection.
	ctx, cancel := c.watch.bind(context.Background(), c.timeout)
	defer cancel()
	c.batches.Add(1)
	c.msgs.Add(uint64(len(msgs)))
	for _, m := range msgs {
		c.byKind[kindOf(m.Subject)].Add(1)
	}
	// Clones: a batch split after a refusal is published again with new
	// batch headers.
	clones := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		clones[i] = cloneMsg(m)
	}
	pr, err := publishAtomic(ctx, c.nc, clones, "publish events")
	if err != nil {
		return 0, err
	}
	if pr.Error != nil {
		return 0, errors.Mark(publishError(pr.Error), errRefused)
	}
	if pr.Duplicate {
		return 0, errors.Mark(errors.Mark(errors.New("events already stored"), errAlreadyStored), errRefused)
	}
	count := uint64(len(msgs))
	if pr.Seq < count {
		// An answer that cannot be the batch's says nothing of whether the
		// batch was stored: the outcome is unknown, as for a lost answer.
		// A server shutting down under load has been seen to send one
		// (TestLostConnectionEndsReadsAndAppendsInFlight, in CI).
		return 0, outcomeUnknown(errors.Newf("acknowledged sequence %d is below batch size %d", pr.Seq, count), "publish events")
	}
	return pr.Seq - count + 1, nil
}

func cloneMsg(m *nats.Msg) *nats.Msg {
	h := nats.Header{}
	for k, v := range m.Header {
		h[k] = append([]string(nil), v...)
	}
	return &nats.Msg{Subject: m.Subject, Header: h, Data: m.Data}
}

// traceCommit starts the span of one group-commit publish: a root span of
// its own, since it stores the commands of many traces at once, linked to
// the append span of each (up to the SDK's link limit). The returned
// function ends it.
func traceCommit(group []*pending, msgs int) func(error) {
	scs := make([]trace.SpanContext, len(group))
	for i, p := range group {
		if p.span != nil {
			scs[i] = p.span.SpanContext()
		}
	}
	_, span := tracing.Start(context.Background(), "commit batch", trace.WithNewRoot(),
		trace.WithLinks(tracing.Links(scs, maxCommitLinks)...),
		trace.WithAttributes(tracing.CommandsKey.Int(len(group)), tracing.MessagesKey.Int(msgs)))
	return func(err error) {
		tracing.Fail(span, err)
		span.End()
	}
}

// maxCommitLinks bounds the links of a commit span: the SDK's default
// limit, past which it would drop them anyway.
const maxCommitLinks = 128
