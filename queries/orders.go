package queries

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/httpx"
)

// OrderReader is what the order queries need from the read model.
type OrderReader interface {
	// Order returns one order with its lines in line_no order, or an error
	// matching domain.ErrNotFound when there is none.
	Order(ctx context.Context, id string) (OrderView, error)
	// Orders returns at most f.Limit orders matching f, newest first
	// (created_at DESC, order_id DESC), each with its lines.
	Orders(ctx context.Context, f OrderFilter) ([]OrderView, error)
}

// OrderFilter selects a page of orders. Zero fields do not filter.
type OrderFilter struct {
	Status     domain.OrderStatus
	CustomerID string
	// After, when set, keeps only orders strictly older than it in the
	// newest-first order: the keyset of the previous page's last row.
	After *OrderCursor
	// Limit is the most orders to return; it is at least 1.
	Limit int
}

// Page sizes of GET /v1/orders and GET /v1/inventory.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// statuses are the order statuses a client may filter on.
var statuses = []domain.OrderStatus{
	domain.StatusPending, domain.StatusConfirmed, domain.StatusRejected, domain.StatusPaid,
	domain.StatusShipped, domain.StatusDelivered, domain.StatusCancelled, domain.StatusExpired,
}

// OrderList is the answer of GET /v1/orders.
type OrderList struct {
	Orders     []OrderView `json:"orders"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// HandleGetOrder answers GET /v1/orders/{id} with the order and
// ETag: "<version>", or 304 when If-None-Match names that version. An
// unknown or malformed id is a 404.
func HandleGetOrder(r OrderReader, c CheckpointReader, log *slog.Logger, opts ...Option) http.HandlerFunc {
	cfg := newConfig(opts)
	log = orDiscard(log)
	return func(w http.ResponseWriter, req *http.Request) {
		p := newParams(req)
		if err := p.err(); err != nil {
			fail(w, req, log, err)
			return
		}
		id := chi.URLParam(req, "id")
		if !domain.ValidOrderID(id) {
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusNotFound, "not_found", "no such order"))
			return
		}
		if err := cfg.consistent(req, c, p); err != nil {
			fail(w, req, log, err)
			return
		}
		o, err := r.Order(req.Context(), id)
		if err != nil {
			fail(w, req, log, err)
			return
		}
		writeVersioned(w, req, o.Version, o)
	}
}

// HandleListOrders answers GET /v1/orders?status=&customer_id=&limit=&cursor=
// with a page of orders, newest first, and the cursor of the next page
// (absent on the last). Bad parameters are a 422 naming each.
func HandleListOrders(r OrderReader, c CheckpointReader, log *slog.Logger, opts ...Option) http.HandlerFunc {
	cfg := newConfig(opts)
	log = orDiscard(log)
	return func(w http.ResponseWriter, req *http.Request) {
		p := newParams(req, "status", "customer_id", "limit", "cursor")
		f, err := orderFilter(p)
		if err == nil {
			err = cfg.consistent(req, c, p)
		}
		if err != nil {
			fail(w, req, log, err)
			return
		}
		limit := f.Limit
		f.Limit++ // one more tells whether there is a next page
		orders, err := r.Orders(req.Context(), f)
		if err != nil {
			fail(w, req, log, err)
			return
		}
		out := OrderList{Orders: orders}
		if len(orders) > limit {
			out.Orders = orders[:limit]
			last := out.Orders[limit-1]
			if out.NextCursor, err = encodeOrderCursor(OrderCursor{CreatedAt: last.CreatedAt, OrderID: last.OrderID}); err != nil {
				fail(w, req, log, err)
				return
			}
		}
		if out.Orders == nil {
			out.Orders = []OrderView{}
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	}
}

// orderFilter reads the list parameters; the validation error names every
// bad one.
func orderFilter(p *params) (OrderFilter, error) {
	f := OrderFilter{Limit: int(p.intIn("limit", DefaultLimit, 1, MaxLimit))}
	if s := p.str("status"); s != "" {
		if !slices.Contains(statuses, domain.OrderStatus(s)) {
			p.set("status", "must be one of "+joinStatuses())
		}
		f.Status = domain.OrderStatus(s)
	}
	if s := p.str("customer_id"); s != "" {
		if !domain.ValidCustomerID(s) {
			p.set("customer_id", domain.TokenRule)
		}
		f.CustomerID = s
	}
	if s := p.str("cursor"); s != "" {
		cur, err := decodeOrderCursor(s)
		if err != nil {
			p.set("cursor", "is not a cursor this endpoint returned")
		} else {
			f.After = &cur
		}
	}
	return f, p.err()
}

func joinStatuses() string {
	s := make([]string, len(statuses))
	for i, st := range statuses {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// writeVersioned answers body with ETag: "<version>", or 304 when the
// request's If-None-Match already names that version.
func writeVersioned(w http.ResponseWriter, req *http.Request, version uint64, body any) {
	tag := etag(version)
	w.Header().Set("ETag", tag)
	// Customer data: no shared or disk cache may keep it. A client that
	// kept the body itself may still revalidate it with If-None-Match.
	w.Header().Set("Cache-Control", "no-store")
	if noneMatch(req.Header.Values("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, body)
}

func etag(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }

// noneMatch reports whether an If-None-Match header names tag (weakly, as
// RFC 9110 wants for If-None-Match) or is "*".
func noneMatch(headers []string, tag string) bool {
	for _, h := range headers {
		for _, t := range strings.Split(h, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == tag {
				return true
			}
		}
	}
	return false
}
