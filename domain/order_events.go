package domain

import "time"

// OrderEvent is the closed set of facts recorded on an order's subject.
// The unexported method seals it, so EvolveOrder and the codec can switch
// over it exhaustively.
type OrderEvent interface {
	isOrderEvent()
	// EventType is the stable name stored in the event envelope; renaming
	// one breaks every stored history, so the names are part of the
	// contract.
	EventType() string
	// OccurredAt is the business time of the fact, taken from the command.
	OccurredAt() time.Time
}

// OrderPlaced records a new order in status pending.
type OrderPlaced struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Currency   string    `json:"currency"`
	Lines      []Line    `json:"lines"`
	TotalCents int64     `json:"total_cents"`
	At         time.Time `json:"at"`
}

// OrderConfirmed records that every line was reserved. Since schema
// version 2 it also records the grant that completed the order (SKU, and
// GrantedAt when the SKU said when), which a LineReserved before it used to
// carry: the outcome that decides an order is one event, one durable
// message. Version 1 events have no SKU; a LineReserved precedes them.
type OrderConfirmed struct {
	SKU       string    `json:"sku,omitempty"`
	GrantedAt time.Time `json:"granted_at,omitzero"`
	At        time.Time `json:"at"`
}

// OrderRejected records that some line could not be reserved. Since schema
// version 2, a rejection for insufficient stock also says what the short
// SKU had available (Available), which a LineRefused before it used to
// carry; version 1 events have none, and a LineRefused precedes them.
type OrderRejected struct {
	Reason    string    `json:"reason"`
	ShortSKUs []string  `json:"short_skus,omitempty"`
	Available *int64    `json:"available,omitempty"`
	At        time.Time `json:"at"`
}

// OrderPaid records a payment of the full total.
type OrderPaid struct {
	AmountCents int64     `json:"amount_cents"`
	PaymentRef  string    `json:"payment_ref"`
	At          time.Time `json:"at"`
}

// OrderShipped records the hand-over to a carrier.
type OrderShipped struct {
	Carrier        string    `json:"carrier"`
	TrackingNumber string    `json:"tracking_number"`
	At             time.Time `json:"at"`
}

// OrderDelivered records the delivery.
type OrderDelivered struct {
	At time.Time `json:"at"`
}

// OrderCancelled records a cancellation. PreviousStatus tells the saga
// whether stock is held, and RefundDueCents what finance owes back, so
// neither has to replay the history to find out. CancelledBy (schema
// version 2) says who cancelled: "customer", "operator" or "system"; events
// stored as version 1 read back with "unknown" (see upcast.go).
type OrderCancelled struct {
	Reason         string      `json:"reason,omitempty"`
	PreviousStatus OrderStatus `json:"previous_status"`
	RefundDueCents int64       `json:"refund_due_cents"`
	CancelledBy    string      `json:"cancelled_by,omitempty"`
	At             time.Time   `json:"at"`
}

// OrderExpired records that a confirmed order stayed unpaid past its
// reservation TTL.
type OrderExpired struct {
	At time.Time `json:"at"`
}

// LineReserved records that the stock of one line is held for the order.
// GrantedAt is when the SKU granted the stock, which may be well before At
// when the outcome reached the order late (a saga hand-over); the
// reservation's TTL runs from it. Events stored before it existed have
// none (zero), and the order then falls back to its confirmation time.
type LineReserved struct {
	SKU       string    `json:"sku"`
	GrantedAt time.Time `json:"granted_at,omitzero"`
	At        time.Time `json:"at"`
}

// LineRefused records that one line could not be reserved and what the
// SKU had available then; an OrderRejected follows it in the same append.
type LineRefused struct {
	SKU       string    `json:"sku"`
	Available int64     `json:"available"`
	At        time.Time `json:"at"`
}

func (OrderPlaced) isOrderEvent()    {}
func (OrderConfirmed) isOrderEvent() {}
func (OrderRejected) isOrderEvent()  {}
func (OrderPaid) isOrderEvent()      {}
func (OrderShipped) isOrderEvent()   {}
func (OrderDelivered) isOrderEvent() {}
func (OrderCancelled) isOrderEvent() {}
func (OrderExpired) isOrderEvent()   {}
func (LineReserved) isOrderEvent()   {}
func (LineRefused) isOrderEvent()    {}

// EventType returns "OrderPlaced".
func (OrderPlaced) EventType() string { return "OrderPlaced" }

// EventType returns "OrderConfirmed".
func (OrderConfirmed) EventType() string { return "OrderConfirmed" }

// EventType returns "OrderRejected".
func (OrderRejected) EventType() string { return "OrderRejected" }

// EventType returns "OrderPaid".
func (OrderPaid) EventType() string { return "OrderPaid" }

// EventType returns "OrderShipped".
func (OrderShipped) EventType() string { return "OrderShipped" }

// EventType returns "OrderDelivered".
func (OrderDelivered) EventType() string { return "OrderDelivered" }

// EventType returns "OrderCancelled".
func (OrderCancelled) EventType() string { return "OrderCancelled" }

// EventType returns "OrderExpired".
func (OrderExpired) EventType() string { return "OrderExpired" }

// EventType returns "LineReserved".
func (LineReserved) EventType() string { return "LineReserved" }

// EventType returns "LineRefused".
func (LineRefused) EventType() string { return "LineRefused" }

// OccurredAt returns At.
func (e OrderPlaced) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e OrderConfirmed) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e OrderRejected) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e OrderPaid) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e OrderShipped) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e OrderDelivered) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e OrderCancelled) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e OrderExpired) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e LineReserved) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e LineRefused) OccurredAt() time.Time { return e.At }

var (
	_ OrderEvent = OrderPlaced{}
	_ OrderEvent = OrderConfirmed{}
	_ OrderEvent = OrderRejected{}
	_ OrderEvent = OrderPaid{}
	_ OrderEvent = OrderShipped{}
	_ OrderEvent = OrderDelivered{}
	_ OrderEvent = OrderCancelled{}
	_ OrderEvent = OrderExpired{}
	_ OrderEvent = LineReserved{}
	_ OrderEvent = LineRefused{}
)
