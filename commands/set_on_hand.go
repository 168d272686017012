package commands

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/domain"
)

// SetOnHand sets a SKU's on-hand count (creating the SKU); it may not go
// below what is reserved.
type SetOnHand struct {
	OnHand int64 `json:"on_hand" required:"true"` // 0 is a count: it must be said
}

// SetOnHand sets sku's on-hand. It fails with a ValidationError (bad SKU or
// count) or ErrInvalidTransition (below reserved).
func (a *App) SetOnHand(ctx context.Context, m Meta, sku string, c SetOnHand) (SKUResult, error) {
	return a.updateSKU(ctx, m, sku, domain.SetOnHand{SKU: sku, OnHand: c.OnHand, At: a.Now()})
}

// HandleSetOnHand serves PUT /v1/inventory/{sku}.
func HandleSetOnHand(a *App) http.HandlerFunc { return handleSKUCommand(a, a.SetOnHand) }

// handleSKUCommand is the HTTP side shared by the inventory commands: Req
// is the body, handle the command on the SKU named in the path.
func handleSKUCommand[Req any](a *App, handle func(context.Context, Meta, string, Req) (SKUResult, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sku := chi.URLParam(r, "sku")
		serve(a, w, r, func(ctx context.Context, m Meta, c Req) (SKUResult, error) {
			return handle(ctx, m, sku, c)
		}, renderSKU)
	}
}

// updateSKU decides cmd against sku, after checking that the SKU is a valid
// subject token: "A.>" must be a 422, never a wildcard.
func (a *App) updateSKU(ctx context.Context, m Meta, sku string, cmd domain.SKUCommand) (SKUResult, error) {
	if !domain.ValidSKU(sku) {
		return SKUResult{}, &domain.ValidationError{Fields: map[string]string{"sku": domain.TokenRule}}
	}
	return update(ctx, a.SKUs, sku, false, m, domain.DecideSKU, cmd)
}
