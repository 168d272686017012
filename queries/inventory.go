package queries

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/httpx"
)

// InventoryReader is what the inventory queries need from the read model.
type InventoryReader interface {
	// Item returns one SKU, or an error matching domain.ErrNotFound when
	// there is none.
	Item(ctx context.Context, sku string) (InventoryView, error)
	// Items returns at most f.Limit SKUs matching f in SKU order.
	Items(ctx context.Context, f InventoryFilter) ([]InventoryView, error)
}

// InventoryFilter selects a page of SKUs. Zero fields do not filter.
type InventoryFilter struct {
	// AvailableBelow, when set, keeps SKUs whose on_hand - reserved is
	// below it.
	AvailableBelow *int64
	// After, when not empty, keeps SKUs sorting after it: the keyset of
	// the previous page's last row.
	After string
	// Limit is the most SKUs to return; it is at least 1.
	Limit int
}

// InventoryList is the answer of GET /v1/inventory.
type InventoryList struct {
	Items      []InventoryView `json:"items"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// HandleGetInventory answers GET /v1/inventory/{sku} with the SKU's stock
// and ETag: "<version>". A malformed SKU is a 422, an unknown one a 404.
func HandleGetInventory(r InventoryReader, c CheckpointReader, log *slog.Logger, opts ...Option) http.HandlerFunc {
	cfg := newConfig(opts)
	log = orDiscard(log)
	return func(w http.ResponseWriter, req *http.Request) {
		p := newParams(req)
		sku := chi.URLParam(req, "sku")
		if !domain.ValidSKU(sku) {
			p.set("sku", domain.TokenRule)
		}
		err := p.err()
		if err == nil {
			err = cfg.consistent(req, c, p)
		}
		if err != nil {
			fail(w, req, log, err)
			return
		}
		item, err := r.Item(req.Context(), sku)
		if err != nil {
			fail(w, req, log, err)
			return
		}
		writeVersioned(w, req, item.Version, item)
	}
}

// HandleListInventory answers GET /v1/inventory?available_below=&limit=&cursor=
// with a page of SKUs in SKU order and the cursor of the next page (absent
// on the last). Bad parameters are a 422 naming each.
func HandleListInventory(r InventoryReader, c CheckpointReader, log *slog.Logger, opts ...Option) http.HandlerFunc {
	cfg := newConfig(opts)
	log = orDiscard(log)
	return func(w http.ResponseWriter, req *http.Request) {
		p := newParams(req, "available_below", "limit", "cursor")
		f := InventoryFilter{Limit: int(p.intIn("limit", DefaultLimit, 1, MaxLimit))}
		if p.str("available_below") != "" {
			n := p.intIn("available_below", 0, 0, maxInt64)
			f.AvailableBelow = &n
		}
		if s := p.str("cursor"); s != "" {
			sku, err := decodeInventoryCursor(s)
			if err != nil {
				p.set("cursor", "is not a cursor this endpoint returned")
			}
			f.After = sku
		}
		err := p.err()
		if err == nil {
			err = cfg.consistent(req, c, p)
		}
		if err != nil {
			fail(w, req, log, err)
			return
		}
		limit := f.Limit
		f.Limit++ // one more tells whether there is a next page
		items, err := r.Items(req.Context(), f)
		if err != nil {
			fail(w, req, log, err)
			return
		}
		out := InventoryList{Items: items}
		if len(items) > limit {
			out.Items = items[:limit]
			out.NextCursor = encodeInventoryCursor(out.Items[limit-1].SKU)
		}
		if out.Items == nil {
			out.Items = []InventoryView{}
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	}
}
