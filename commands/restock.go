package commands

import (
	"context"
	"net/http"

	"github.com/orderengine/engine/domain"
)

// Restock adds received units to an existing SKU.
type Restock struct {
	Qty int64 `json:"qty"`
}

// Restock adds c.Qty to sku's on-hand. It fails with a ValidationError or
// domain.ErrNotFound for a SKU that was never set.
func (a *App) Restock(ctx context.Context, m Meta, sku string, c Restock) (SKUResult, error) {
	return a.updateSKU(ctx, m, sku, domain.Restock{SKU: sku, Qty: c.Qty, At: a.Now()})
}

// HandleRestock serves POST /v1/inventory/{sku}/restock.
func HandleRestock(a *App) http.HandlerFunc { return handleSKUCommand(a, a.Restock) }
