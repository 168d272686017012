package commands

import (
	"context"
	"net/http"

	"github.com/orderengine/engine/domain"
)

// PayOrder records the payment of a confirmed order; the amount must equal
// the order's total.
type PayOrder struct {
	AmountCents int64  `json:"amount_cents"`
	PaymentRef  string `json:"payment_ref"`
}

// PayOrder pays order id. It fails with domain.ErrNotFound,
// ErrInvalidTransition (not confirmed), a ValidationError (amount, ref) or
// a failed If-Match.
func (a *App) PayOrder(ctx context.Context, m Meta, id string, c PayOrder) (OrderResult, error) {
	return a.updateOrder(ctx, m, id, payCommand(a, c))
}

func payCommand(a *App, c PayOrder) domain.OrderCommand {
	return domain.PayOrder{AmountCents: c.AmountCents, PaymentRef: c.PaymentRef, At: a.Now()}
}

// HandlePayOrder serves POST /v1/orders/{id}/payment.
func HandlePayOrder(a *App) http.HandlerFunc { return handleOrderCommand(a, payCommand) }
