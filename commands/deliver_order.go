package commands

import (
	"context"
	"net/http"

	"github.com/orderengine/engine/domain"
)

// DeliverOrder records that a shipped order arrived. Its body is `{}`.
type DeliverOrder struct{}

// DeliverOrder delivers order id. It fails with domain.ErrNotFound,
// ErrInvalidTransition (not shipped) or a failed If-Match.
func (a *App) DeliverOrder(ctx context.Context, m Meta, id string, c DeliverOrder) (OrderResult, error) {
	return a.updateOrder(ctx, m, id, deliverCommand(a, c))
}

func deliverCommand(a *App, _ DeliverOrder) domain.OrderCommand {
	return domain.DeliverOrder{At: a.Now()}
}

// HandleDeliverOrder serves POST /v1/orders/{id}/delivery.
func HandleDeliverOrder(a *App) http.HandlerFunc { return handleOrderCommand(a, deliverCommand) }
