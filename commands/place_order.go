package commands

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

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

// PlaceOrder places an order; its reservation requests are stored with it.
// Without an idempotency key the order gets a new time-ordered id. With
// one, its id is derived from the key (KeyedOrderID), so the order's first
// event is the key's record: a retry finds the order's subject taken and
// is answered from that event (Replayed), and no record message is
// stored. It fails with a domain.ValidationError naming every bad field,
// domain.ErrIdempotencyKeyReused (the key placed a different order),
// domain.ErrBacklogFull when a partition of its SKUs is past the backlog
// limit (a.Backlog), or domain.ErrUnavailable when the event store is down
// (nothing stored in either case).
func (a *App) PlaceOrder(ctx context.Context, m Meta, c PlaceOrder) (OrderResult, error) {
	// The backlog is checked before anything is read or written: refusing
	// must cost the engine next to nothing, since it happens exactly when
	// it is overloaded. A retry of an order already placed is refused too
	// until the backlog falls; its key then answers with the first outcome.
	// Bad input is told as bad input (422) whatever the load.
	id := a.NewID()
	if m.IdemKey != "" {
		id = KeyedOrderID(m.IdemKey)
	}
	place := domain.PlaceOrder{OrderID: id, CustomerID: c.CustomerID, Currency: c.Currency, Lines: c.Lines, At: a.Now()}
	if err := place.Validate(); err != nil {
		return OrderResult{}, err
	}
	if err := a.Backlog.Admit(c.Lines); err != nil {
		return OrderResult{}, err
	}
	if res, ok, err := a.placeDirect(ctx, m, place); ok {
		return res, err
	}
	return update(ctx, a.Orders, id, true, m, domain.DecideOrder, domain.OrderCommand(place))
}

// KeyedOrderID derives the id of the order placed under a scoped
// idempotency key: an RFC 9562 version 8 UUID made of the key's SHA-256.
// It is not time-ordered, the one thing a keyed order gives up for
// needing no idempotency record of its own.
func KeyedOrderID(scopedKey string) string {
	sum := sha256.Sum256([]byte("order-id\x00" + scopedKey))
	var u uuid.UUID
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u.String()
}

// AwaitReservation waits up to timeout for order id to leave pending and
// returns it as it then stands.
func (a *App) AwaitReservation(ctx context.Context, id string, timeout time.Duration) (eventstore.Snapshot[domain.Order], error) {
	return a.awaitOutcome(ctx, id, 0, timeout)
}

// awaitOutcome is AwaitReservation for the order this process just placed,
// at stream sequence seq: it need not read the store before the outcome
// is announced.
func (a *App) awaitOutcome(ctx context.Context, id string, seq uint64, timeout time.Duration) (eventstore.Snapshot[domain.Order], error) {
	return a.Orders.AwaitAfter(ctx, id, seq, timeout, func(s eventstore.Snapshot[domain.Order]) bool {
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
		status := http.StatusAccepted
		serve(a, w, r, func(ctx context.Context, m Meta, c PlaceOrder) (OrderResult, error) {
			res, err := a.PlaceOrder(ctx, m, c)
			if err != nil || res.Replayed || wait == 0 {
				return res, err
			}
			snap, err := a.awaitOutcome(ctx, res.State.ID, res.Position.Seq, wait)
			if err == nil && snap.State.Status != domain.StatusPending {
				status = http.StatusCreated
				w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
				return OrderResult{State: snap.State, Version: snap.Version, Position: eventstore.Position{Shard: res.Position.Shard, Seq: snap.LastSeq}, Events: res.Events}, nil
			}
			return res, nil // the order is placed; only the wait ended
		}, func(h http.Header, res OrderResult) (int, any) { return renderOrder(status)(h, res) })
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
