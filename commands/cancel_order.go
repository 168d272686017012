package commands

import (
	"context"
	"net/http"

	"github.com/orderengine/engine/domain"
)

// CancelOrder cancels a pending, confirmed or paid order; a paid one owes a
// refund of what was paid.
type CancelOrder struct {
	Reason string `json:"reason"`
}

// CancelOrder cancels order id. It fails with domain.ErrNotFound,
// ErrInvalidTransition (shipped or finished), a ValidationError (reason) or
// a failed If-Match.
func (a *App) CancelOrder(ctx context.Context, m Meta, id string, c CancelOrder) (OrderResult, error) {
	return a.updateOrder(ctx, m, id, cancelCommand(a, c))
}

func cancelCommand(a *App, c CancelOrder) domain.OrderCommand {
	return domain.CancelOrder{Reason: c.Reason, At: a.Now()}
}

// HandleCancelOrder serves POST /v1/orders/{id}/cancellation.
func HandleCancelOrder(a *App) http.HandlerFunc { return handleOrderCommand(a, cancelCommand) }
