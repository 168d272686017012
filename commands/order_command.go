package commands

import (
	"context"
	"net/http"

	"github.com/cockroachdb/errors"
	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/domain"
)

// updateOrder decides cmd against order id; the order must exist.
func (a *App) updateOrder(ctx context.Context, m Meta, id string, cmd domain.OrderCommand) (OrderResult, error) {
	if !domain.ValidOrderID(id) {
		// Checked before the id becomes part of a subject.
		return OrderResult{}, errors.Wrapf(domain.ErrNotFound, "no order %q", id)
	}
	return update(ctx, a.Orders, id, false, m, domain.DecideOrder, cmd)
}

// handleOrderCommand is the HTTP side shared by the commands on an existing
// order: Req is the body, toCmd builds the domain command from it.
func handleOrderCommand[Req any](a *App, toCmd func(a *App, req Req) domain.OrderCommand) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		serve(a, w, r, func(ctx context.Context, m Meta, req Req) (OrderResult, error) {
			return a.updateOrder(ctx, m, id, toCmd(a, req))
		}, renderOrder(http.StatusOK))
	}
}
