package queries

import (
	"time"

	"github.com/orderengine/engine/domain"
)

// The views are the API's one shape of an order and of a SKU (API.md, GET
// /v1/orders/{id} and /v1/inventory/{sku}). The read side owns them: the
// read models are stored in this shape and projections scan into it; the
// command side answers a command with the same shape, so it imports them
// from here rather than the other way round.

// OrderView is an order as the API shows it.
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

// NewOrderView renders an order state at version.
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

// NewInventoryView renders a SKU state at version.
func NewInventoryView(s domain.SKU, version uint64) InventoryView {
	return InventoryView{SKU: s.SKU, OnHand: s.OnHand, Reserved: s.Reserved, Available: s.Available(), Version: version}
}
