package commands

import (
	"context"
	"net/http"

	"github.com/orderengine/engine/domain"
)

// RefundOrder records a partial refund of a paid, shipped or delivered
// order: amount_cents in minor units of the order's currency, and a reason.
type RefundOrder struct {
	AmountCents int64  `json:"amount_cents"`
	Reason      string `json:"reason"`
}

// RefundOrder refunds part of order id. It fails with domain.ErrNotFound,
// ErrInvalidTransition (not paid, or cancelled), a ValidationError
// (amount beyond what is left of the payment, reason) or a failed
// If-Match.
func (a *App) RefundOrder(ctx context.Context, m Meta, id string, c RefundOrder) (OrderResult, error) {
	return a.updateOrder(ctx, m, id, refundCommand(a, c))
}

func refundCommand(a *App, c RefundOrder) domain.OrderCommand {
	return domain.RefundOrder{AmountCents: c.AmountCents, Reason: c.Reason, At: a.Now()}
}

// HandleRefundOrder serves POST /v1/orders/{id}/refunds.
func HandleRefundOrder(a *App) http.HandlerFunc { return handleOrderCommand(a, refundCommand) }
