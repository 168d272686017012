package webhooks

import (
	"context"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
)

// errLeasedElsewhere says another engine delivers to the endpoint.
var errLeasedElsewhere = errors.New("another engine holds the endpoint's delivery lease")

// leaseCheck is how often a held lease's connection is checked, and how
// long an engine waits before it asks again for a lease another holds.
const leaseCheck = 2 * time.Second

// lease takes endpoint id's delivery lease, so that of several engines on
// one database exactly one delivers to an endpoint and its events are
// neither sent twice nor raced out of order: a Postgres session advisory
// lock, on a connection of its own (not the pool's: a lease is held for as
// long as the engine runs). An engine that dies, or loses its connection,
// loses the lease with it, and another takes over from the endpoint's
// saved position. lost is closed when the connection fails while held;
// release gives the lease up. It fails with errLeasedElsewhere when
// another engine holds it.
func (s *Service) lease(ctx context.Context, id string) (lost <-chan struct{}, release func(), err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, nil, errors.Wrap(err, "connect for the webhook delivery lease")
	}
	const key = `hashtextextended('engine.webhook:' || $1, 0)`
	var held bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+key+`)`, id).Scan(&held); err != nil || !held {
		_ = conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, nil, errors.Wrap(err, "take the webhook delivery lease")
		}
		return nil, nil, errLeasedElsewhere
	}
	lostc, stop, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(leaseCheck)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				pctx, cancel := context.WithTimeout(context.Background(), leaseCheck)
				err := conn.Ping(pctx)
				cancel()
				if err != nil {
					close(lostc)
					return
				}
			}
		}
	}()
	return lostc, func() {
		close(stop)
		<-done
		// Closing the session ends the lock; the explicit unlock only
		// makes it visible at once to an engine asking right now.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(uctx, `SELECT pg_advisory_unlock(`+key+`)`, id)
		_ = conn.Close(uctx)
	}, nil
}
