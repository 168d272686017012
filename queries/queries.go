// Package queries is the read half of the engine: HTTP handlers that answer
// from the read models the projections keep in Postgres. Each query declares
// the narrow read-model interface it needs next to its handler; package
// projections implements them. Handlers honour read-your-writes: a
// Consistency-Token (header) or consistent_with (query parameter) makes them
// wait until the read models include that stream sequence.
package queries

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/httpx"
)

// CheckpointReader tells how far the read models are.
type CheckpointReader interface {
	// Checkpoints returns, per shard of the event store (index k for
	// shard k), the last sequence of its stream the read models include; a
	// shard they include nothing of is 0 or absent.
	Checkpoints(ctx context.Context) ([]uint64, error)
}

// Awaitable is a CheckpointReader that wants to know while a read waits
// for it to reach a token (the projection gathers fuller batches only
// while no one is waiting); done ends the wait.
type Awaitable interface {
	Await() (done func())
}

// Defaults of the read-your-writes wait (API.md: up to 5 s).
const (
	DefaultConsistencyTimeout = 5 * time.Second
	DefaultPollInterval       = 15 * time.Millisecond
)

// Option changes how a handler waits for a Consistency-Token, or what
// else it reports.
type Option func(*config)

type config struct {
	timeout    time.Duration
	poll       time.Duration
	head       *HeadCache
	verifyWait time.Duration
	backlog    BacklogReader
}

// WithReservationBacklog makes the dashboard's summary and live view report
// the reservation backlog b reads.
func WithReservationBacklog(b BacklogReader) Option { return func(c *config) { c.backlog = b } }

// WithVerifyWait sets how long GET /v1/audit/verify waits for the answer
// before it answers 202 with the job (DefaultVerifyWait).
func WithVerifyWait(d time.Duration) Option { return func(c *config) { c.verifyWait = d } }

// WithStoreHead makes a handler refuse at once, with 422, a token beyond
// the event store's last sequence: no write ever answered with it, so the
// read models would never reach it and the wait would hold a request slot
// for nothing.
func WithStoreHead(h *HeadCache) Option { return func(c *config) { c.head = h } }

// WithConsistencyTimeout sets how long a handler waits for the read models
// to reach a Consistency-Token before it answers 503 consistency_timeout.
func WithConsistencyTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithPollInterval sets how often a waiting handler reads the checkpoint.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.poll = d } }

// orDiscard lets handlers be built with a nil logger.
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

func newConfig(opts []Option) config {
	c := config{timeout: DefaultConsistencyTimeout, poll: DefaultPollInterval, verifyWait: DefaultVerifyWait}
	for _, o := range opts {
		o(&c)
	}
	if c.poll <= 0 {
		c.poll = DefaultPollInterval
	}
	return c
}

// waitFor blocks until c reaches token on every shard it names. It returns a 503
// consistency_timeout problem when the read models are still behind after
// the timeout, a 422 naming field when the token is beyond the store's last
// sequence of one of its shards (with WithStoreHead), and the request context's error when the
// client goes away.
func (cfg config) waitFor(ctx context.Context, c CheckpointReader, token eventstore.Token, field string) error {
	deadline := time.Now().Add(cfg.timeout)
	t := time.NewTicker(cfg.poll)
	defer t.Stop()
	for first := true; ; first = false {
		seqs, err := c.Checkpoints(ctx)
		if err != nil {
			return errors.Wrap(err, "read the read-model checkpoint")
		}
		if token.CoveredBy(seqs) {
			return nil
		}
		// Only a token the read models have not reached needs the store. A
		// store that does not answer proves nothing either way: the read
		// models, in Postgres, may still catch up, so the wait goes on.
		if first && cfg.head != nil {
			ok, err := cfg.head.Covers(ctx, token)
			if err != nil && ctx.Err() != nil {
				return errors.Wrap(err, "check the Consistency-Token against the event store")
			}
			if err == nil && !ok {
				return &domain.ValidationError{Fields: map[string]string{
					field: "is beyond the last sequence of the event store (or names a shard it does not have); pass the Consistency-Token a command answered"}}
			}
		}
		if first {
			if a, ok := c.(Awaitable); ok {
				defer a.Await()()
			}
		}
		if !time.Now().Before(deadline) {
			p := httpx.NewProblem(http.StatusServiceUnavailable, "consistency_timeout",
				"the read models have not caught up with the Consistency-Token yet; retry later")
			p.RetryAfter = 1
			return p
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// consistent waits for the request's consistency token, if p holds one.
func (cfg config) consistent(r *http.Request, c CheckpointReader, p *params) error {
	if !p.hasToken {
		return nil
	}
	return cfg.waitFor(r.Context(), c, p.token, p.tokenField)
}

// fail answers err as a problem (httpx's one table: an unreachable read
// model, domain.ErrUnavailable, is a 503 with Retry-After). A client that
// went away gets nothing.
func fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	httpx.Fail(w, r, log, err)
}
