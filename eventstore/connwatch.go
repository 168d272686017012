package eventstore

import (
	"context"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"

	"github.com/orderengine/engine/domain"
)

// errConnectionLost is the cause of a request cut short because the
// connection it was sent on was lost before the answer came.
var errConnectionLost = errors.Mark(errors.New("connection to NATS lost"), domain.ErrUnavailable)

// connWatch follows the store's NATS connection so that requests in flight
// end as soon as the connection they were sent on is lost. nats.go does not
// end them itself: a request whose connection drops waits for its answer
// until its timeout (10 s), since the answer could in principle still come
// over a new connection. It never does for ours (a publish acknowledgement
// or a direct get is sent once, to the inbox of the connection that asked).
//
// It listens with nc.StatusChanged rather than the connection's disconnect
// and closed handlers: nats.go keeps one handler of each kind, which other
// code (the drain on shutdown, a caller's own options) sets and replaces,
// while status listeners add up. Status events are also sent the moment the
// status changes, where handlers queue behind other asynchronous callbacks.
type connWatch struct {
	nc     *nats.Conn
	events chan nats.Status
	done   chan struct{}

	mu sync.Mutex
	// epoch stands for one connection to the server: it ends, with cause
	// errConnectionLost, when that connection is lost, and a new one begins
	// when the client has reconnected.
	epoch context.Context
	end   context.CancelCauseFunc
}

func watchConn(nc *nats.Conn) *connWatch {
	w := &connWatch{nc: nc, done: make(chan struct{})}
	// Listening before looking at the status: a change in between is then
	// in the channel rather than missed.
	w.events = nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	w.epoch, w.end = context.WithCancelCause(context.Background())
	if !nc.IsConnected() {
		w.end(errConnectionLost)
	}
	go w.run()
	return w
}

func (w *connWatch) run() {
	defer close(w.done)
	for st := range w.events {
		w.mu.Lock()
		if st != nats.CONNECTED {
			w.end(errConnectionLost)
		}
		// Reconnected, possibly already by the time a loss is read: a
		// new connection, a new epoch.
		if w.nc.IsConnected() && w.epoch.Err() != nil {
			w.epoch, w.end = context.WithCancelCause(context.Background())
		}
		w.mu.Unlock()
	}
}

// close stops following the connection and ends the current epoch.
func (w *connWatch) close() {
	w.nc.RemoveStatusListener(w.events)
	<-w.done
	w.mu.Lock()
	w.end(errConnectionLost)
	w.mu.Unlock()
}

// bind returns ctx bounded by timeout and ended, with cause
// errConnectionLost, as soon as the connection in use now is lost. Call the
// returned cancel when the request is over.
func (w *connWatch) bind(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	w.mu.Lock()
	if w.epoch.Err() != nil && w.nc.IsConnected() {
		// Reconnected, and run has not read the news yet: a request on
		// the new connection must not be cut for the old one's loss.
		w.epoch, w.end = context.WithCancelCause(context.Background())
	}
	epoch := w.epoch
	w.mu.Unlock()
	// No goroutine per request: AfterFunc only registers with epoch.
	stop := context.AfterFunc(epoch, func() { cancel(errConnectionLost) })
	tctx, tcancel := context.WithTimeout(ctx, timeout)
	return tctx, func() {
		stop()
		tcancel()
		cancel(nil)
	}
}

// connectionLost reports whether ctx, from bind, ended because the
// connection was lost.
func connectionLost(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errConnectionLost)
}

// requestError explains why a request bound to ctx failed: the connection
// was lost, or err as the client returned it.
func requestError(ctx context.Context, err error) error {
	if connectionLost(ctx) {
		return errConnectionLost
	}
	return unavailable(err)
}
