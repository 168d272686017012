// Package webhooks delivers the integration feed (package feed) to
// admin-registered HTTP endpoints: signed, retried with exponential
// backoff and full jitter, dead-lettered per endpoint after the last
// attempt, and never out of order per order (docs/design/integration-feed.md).
package webhooks

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// Options tune delivery; zero fields take the defaults named.
type Options struct {
	// MaxAttempts is how many times one event is tried before it is
	// dead-lettered (8).
	MaxAttempts int
	// BaseBackoff and MaxBackoff bound the wait before attempt n+1: a
	// uniformly random time in [0, min(MaxBackoff, BaseBackoff*2^(n-1))]
	// (500ms and 1m).
	BaseBackoff, MaxBackoff time.Duration
	// Timeout bounds one attempt, response included (10s).
	Timeout time.Duration
	// Now is the clock that timestamps signatures (time.Now).
	Now func() time.Time
	// Refresh is how often the endpoints are read again, so that one
	// registered or deleted through another engine is taken up or
	// dropped here too (5s).
	Refresh time.Duration
}

func (o Options) orDefaults() Options {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	return o
}

// Service registers endpoints and runs one delivery worker per endpoint.
// It is safe for concurrent use.
type Service struct {
	store  *eventstore.Store
	pool   *pgxpool.Pool
	log    *slog.Logger
	opts   Options
	client *http.Client

	mu      sync.Mutex
	ctx     context.Context // set by Run; nil before
	workers map[string]*worker
	wg      sync.WaitGroup
}

// New returns a service delivering store's feed to the endpoints kept in
// pool (schema.sql's hooks tables).
func New(store *eventstore.Store, pool *pgxpool.Pool, log *slog.Logger, o Options) *Service {
	o = o.orDefaults()
	return &Service{store: store, pool: pool, log: log, opts: o, workers: map[string]*worker{},
		client: &http.Client{
			// A redirect is an answer, not a delivery: following it would
			// send the signed event somewhere nobody registered.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
}

// Run starts a worker for every endpoint and for each one registered
// later, and returns nil once ctx ends and the workers have stopped.
func (s *Service) Run(ctx context.Context) error {
	for {
		err := s.start(ctx)
		if err == nil {
			break
		}
		s.log.Warn("webhooks: cannot load the endpoints; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	tick := time.NewTicker(s.opts.Refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.wg.Wait()
			return nil
		case <-tick.C:
			if err := s.sync(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("webhooks: cannot read the endpoints; keeping the ones known", "err", err)
			}
		}
	}
}

// sync starts a worker for every endpoint without one and stops those of
// endpoints deleted (through another engine: a delete here stops its own
// at once). Of several engines, each runs a worker per endpoint, and the
// delivery lease lets one of them deliver.
func (s *Service) sync(ctx context.Context) error {
	eps, err := s.List(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	live := map[string]bool{}
	for _, ep := range eps {
		live[ep.ID] = true
		s.startWorkerLocked(ep)
	}
	for id, w := range s.workers {
		if !live[id] {
			w.cancel()
			delete(s.workers, id)
		}
	}
	return nil
}

func (s *Service) start(ctx context.Context) error {
	if err := s.store.OpenFeed(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	eps, err := s.List(ctx)
	if err != nil {
		return err
	}
	s.ctx = ctx
	for _, ep := range eps {
		s.startWorkerLocked(ep)
	}
	return nil
}

// startWorkerLocked starts ep's worker unless it runs; s.mu is held.
func (s *Service) startWorkerLocked(ep Endpoint) {
	if s.ctx == nil || s.workers[ep.ID] != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	w := &worker{s: s, ep: ep, redeliver: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	s.workers[ep.ID] = w
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(w.done)
		w.run(ctx)
	}()
}

// Register stores a new endpoint and starts delivering to it. It returns
// the endpoint and its signing secret, which is not shown again. It fails
// with a domain.ValidationError naming bad fields.
func (s *Service) Register(ctx context.Context, r Registration) (Endpoint, string, error) {
	if bad := r.Valid(); len(bad) > 0 {
		return Endpoint{}, "", &domain.ValidationError{Fields: bad}
	}
	if err := s.store.OpenFeed(ctx); err != nil {
		return Endpoint{}, "", err
	}
	var from uint64
	if !r.FromStart {
		head, err := s.store.FeedHead(ctx)
		if err != nil {
			return Endpoint{}, "", err
		}
		from = head
	}
	ep, secret, err := s.insertEndpoint(ctx, r, from)
	if err != nil {
		return Endpoint{}, "", err
	}
	s.mu.Lock()
	s.startWorkerLocked(ep)
	s.mu.Unlock()
	return ep, secret, nil
}

// Delete stops delivering to endpoint id and forgets it with its dead
// letters; it fails with domain.ErrNotFound.
func (s *Service) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	w := s.workers[id]
	delete(s.workers, id)
	s.mu.Unlock()
	if w != nil {
		w.cancel()
		<-w.done
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM hooks.endpoints WHERE id = $1`, id)
	if err != nil {
		return errors.Wrap(err, "delete webhook endpoint")
	}
	if tag.RowsAffected() == 0 {
		return errors.Mark(errors.Newf("no webhook endpoint %q", id), domain.ErrNotFound)
	}
	return nil
}

// Redeliver asks endpoint id's worker to deliver its dead letters again,
// in feed order, and returns how many there are. The worker tries each
// as a new event (MaxAttempts, backoff); a letter delivered is removed,
// and one that fails again keeps the later letters of its order parked.
// It fails with domain.ErrNotFound.
func (s *Service) Redeliver(ctx context.Context, id string) (int, error) {
	dls, err := s.DeadLetters(ctx, id)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	w := s.workers[id]
	s.mu.Unlock()
	if w == nil {
		return 0, errors.Mark(errors.New("webhook delivery is not running"), domain.ErrUnavailable)
	}
	select {
	case w.redeliver <- struct{}{}:
	default: // already asked: the pending pass reads the letters afresh
	}
	return len(dls), nil
}
