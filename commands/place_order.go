package commands

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// PlaceOrder asks for a new order; it starts pending while its lines are
// reserved.
type PlaceOrder struct {
	CustomerID string        `json:"customer_id"`
	Currency   string        `json:"currency"`
	Lines      []domain.Line `json:"lines"`
}

// PlaceOrder places an order under a new time-ordered id; its reservation
// requests are stored with it. It fails with a domain.ValidationError naming
// every bad field, or ErrUnavailable when the event store is down (nothing
// stored).
func (a *App) PlaceOrder(ctx context.Context, m Meta, c PlaceOrder) (Outcome, error) {
	id := a.newOrderID(m)
	cmd := domain.PlaceOrder{OrderID: id, CustomerID: c.CustomerID, Currency: c.Currency, Lines: c.Lines, At: a.Now()}
	return updateAggregate(ctx, a.Orders, id, true, m, func(s domain.Order) ([]domain.OrderEvent, error) {
		return domain.DecideOrder(s, cmd)
	}, orderResponse(http.StatusAccepted))
}

// AwaitReservation waits up to timeout for order id to leave pending and
// returns it as it then stands.
func (a *App) AwaitReservation(ctx context.Context, id string, timeout time.Duration) (eventstore.Snapshot[domain.Order], error) {
	return a.Orders.Await(ctx, id, timeout, func(s eventstore.Snapshot[domain.Order]) bool {
		return s.State.Status != domain.StatusPending
	})
}

// maxPreferWait caps Prefer: wait=N.
const maxPreferWait = 10 * time.Second

// HandlePlaceOrder serves POST /v1/orders. With `Prefer: wait=N` it waits up
// to N seconds (at most 10) for the reservation outcome and answers 201 with
// the order confirmed or rejected; otherwise, or if the outcome is later,
// 202 with the order pending.
func HandlePlaceOrder(a *App) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		wait := preferWait(r.Header.Values("Prefer"))
		serve(a, w, r, func(ctx context.Context, m Meta, c PlaceOrder) (Outcome, error) {
			out, err := a.PlaceOrder(ctx, m, c)
			if err != nil || out.Replay != nil || wait == 0 {
				return out, err
			}
			id := out.Response.Body.(OrderView).OrderID
			snap, err := a.AwaitReservation(ctx, id, wait)
			if err == nil && snap.State.Status != domain.StatusPending {
				w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
				return Outcome{Response: orderResponse(http.StatusCreated)(snap), Seq: snap.LastSeq, Shard: a.Store.ShardOf(id)}, nil
			}
			return out, nil // the order is placed; only the wait ended
		})
	}
}

// preferWait reads RFC 7240's wait preference, in seconds.
func preferWait(values []string) time.Duration {
	for _, v := range values {
		for _, pref := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "wait") {
				continue
			}
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if err != nil || n <= 0 {
				return 0
			}
			return min(time.Duration(n)*time.Second, maxPreferWait)
		}
	}
	return 0
}
