package commands

import (
	"context"
	"net/http"
	"slices"

	"github.com/orderengine/engine/domain"
)

// ReturnOrder records units of a delivered order's lines that came back,
// and the refund due for them. Returned units are not restocked: the
// warehouse restocks what it accepts back (POST /v1/inventory/{sku}/restock).
type ReturnOrder struct {
	Lines  []domain.ReturnLine `json:"lines"`
	Reason string              `json:"reason"`
}

// ReturnOrder returns lines of order id. It fails with domain.ErrNotFound,
// ErrInvalidTransition (not delivered), a ValidationError (a SKU the
// order lacks, more units than delivered and not returned yet, reason)
// or a failed If-Match.
func (a *App) ReturnOrder(ctx context.Context, m Meta, id string, c ReturnOrder) (OrderResult, error) {
	return a.updateOrder(ctx, m, id, returnCommand(a, c))
}

func returnCommand(a *App, c ReturnOrder) domain.OrderCommand {
	return domain.ReturnLines{Lines: slices.Clone(c.Lines), Reason: c.Reason, At: a.Now()}
}

// HandleReturnOrder serves POST /v1/orders/{id}/returns.
func HandleReturnOrder(a *App) http.HandlerFunc { return handleOrderCommand(a, returnCommand) }
