package commands

import (
	"net/http"
	"strconv"
	"time"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// OrderView is an order as the API shows it (API.md, GET /v1/orders/{id}).
type OrderView struct {
	OrderID        string          `json:"order_id"`
	CustomerID     string          `json:"customer_id"`
	Status         string          `json:"status"`
	Currency       string          `json:"currency"`
	Lines          []OrderLineView `json:"lines"`
	TotalCents     int64           `json:"total_cents"`
	RefundDueCents int64           `json:"refund_due_cents"`
	// RefundedCents is what partial refunds and returns refunded;
	// RefundDueCents what a cancellation owes back. Amounts are in minor
	// units of Currency.
	RefundedCents int64     `json:"refunded_cents"`
	Version       uint64    `json:"version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// OrderLineView is an order line as the API shows it: the line as
// ordered and how many of its units came back.
type OrderLineView struct {
	SKU            string `json:"sku"`
	Qty            int64  `json:"qty"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	ReturnedQty    int64  `json:"returned_qty"`
}

// NewOrderView renders an order state.
func NewOrderView(o domain.Order, version uint64) OrderView {
	lines := make([]OrderLineView, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = OrderLineView{SKU: l.SKU, Qty: l.Qty, UnitPriceCents: l.UnitPriceCents, ReturnedQty: o.ReturnedQty(l.SKU)}
	}
	return OrderView{
		OrderID: o.ID, CustomerID: o.CustomerID, Status: string(o.Status), Currency: o.Currency,
		Lines: lines, TotalCents: o.TotalCents, RefundDueCents: o.RefundDueCents, RefundedCents: o.RefundedCents,
		Version: version, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
	}
}

// InventoryView is a SKU as the API shows it.
type InventoryView struct {
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	Version   uint64 `json:"version"`
}

// NewInventoryView renders a SKU state.
func NewInventoryView(s domain.SKU, version uint64) InventoryView {
	return InventoryView{SKU: s.SKU, OnHand: s.OnHand, Reserved: s.Reserved, Available: s.Available(), Version: version}
}

// orderResponse answers an order command with the order as it now stands.
func orderResponse(status int) func(eventstore.Snapshot[domain.Order]) Response {
	return func(s eventstore.Snapshot[domain.Order]) Response {
		return Response{
			Status: status,
			Header: map[string]string{"ETag": etag(s.Version), "Location": "/v1/orders/" + s.State.ID},
			Body:   NewOrderView(s.State, s.Version),
		}
	}
}

func inventoryResponse(s eventstore.Snapshot[domain.SKU]) Response {
	return Response{Status: http.StatusOK, Header: map[string]string{"ETag": etag(s.Version)}, Body: NewInventoryView(s.State, s.Version)}
}

func etag(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }
