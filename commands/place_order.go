package commands

import (
	"context"
	"net/http"

	"github.com/orderengine/engine/domain"
)

// PlaceOrder asks for a new order; it starts pending while its lines are
// reserved.
type PlaceOrder struct {
	CustomerID string        `json:"customer_id"`
	Currency   string        `json:"currency"`
	Lines      []domain.Line `json:"lines"`
}

// PlaceOrder places an order under a new time-ordered id. It fails with a
// domain.ValidationError naming every bad field, or ErrUnavailable when the
// event store is down (nothing stored).
func (a *App) PlaceOrder(ctx context.Context, m Meta, c PlaceOrder) (Outcome, error) {
	id := a.NewID()
	cmd := domain.PlaceOrder{OrderID: id, CustomerID: c.CustomerID, Currency: c.Currency, Lines: c.Lines, At: a.Now()}
	return update(ctx, a.Orders, id, m, func(s domain.Order) ([]domain.OrderEvent, error) {
		return domain.DecideOrder(s, cmd)
	}, orderResponse(http.StatusAccepted))
}

// HandlePlaceOrder serves POST /v1/orders.
func HandlePlaceOrder(a *App) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		serve(a, w, r, a.PlaceOrder)
	}
}
