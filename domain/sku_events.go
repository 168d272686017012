package domain

import "time"

// SKUEvent is the closed set of facts recorded on a SKU's subject, sealed
// by the unexported method.
type SKUEvent interface {
	isSKUEvent()
	// EventType is the stable name stored in the event envelope.
	EventType() string
	// OccurredAt is the business time of the fact, taken from the command.
	OccurredAt() time.Time
}

// OnHandSet records an explicit stock count; the first one creates the
// SKU.
type OnHandSet struct {
	SKU    string    `json:"sku"`
	OnHand int64     `json:"on_hand"`
	At     time.Time `json:"at"`
}

// Restocked records received stock.
type Restocked struct {
	SKU string    `json:"sku"`
	Qty int64     `json:"qty"`
	At  time.Time `json:"at"`
}

// StockReserved records that Qty units are held for an order.
type StockReserved struct {
	ReservationID string    `json:"reservation_id"`
	OrderID       string    `json:"order_id"`
	Qty           int64     `json:"qty"`
	At            time.Time `json:"at"`
}

// ReservationRefused records that a reservation could not be granted and
// what was available then; it is stored so a redelivered request gets the
// same answer instead of a possibly different one.
type ReservationRefused struct {
	ReservationID string    `json:"reservation_id"`
	OrderID       string    `json:"order_id"`
	Qty           int64     `json:"qty"`
	Available     int64     `json:"available"`
	At            time.Time `json:"at"`
}

// ReservationReleased records that a held reservation went back to the
// available stock.
type ReservationReleased struct {
	ReservationID string    `json:"reservation_id"`
	Qty           int64     `json:"qty"`
	At            time.Time `json:"at"`
}

// ReservationCommitted records that a held reservation left the stock for
// good.
type ReservationCommitted struct {
	ReservationID string    `json:"reservation_id"`
	Qty           int64     `json:"qty"`
	At            time.Time `json:"at"`
}

func (OnHandSet) isSKUEvent()            {}
func (Restocked) isSKUEvent()            {}
func (StockReserved) isSKUEvent()        {}
func (ReservationRefused) isSKUEvent()   {}
func (ReservationReleased) isSKUEvent()  {}
func (ReservationCommitted) isSKUEvent() {}

// EventType returns "OnHandSet".
func (OnHandSet) EventType() string { return "OnHandSet" }

// EventType returns "Restocked".
func (Restocked) EventType() string { return "Restocked" }

// EventType returns "StockReserved".
func (StockReserved) EventType() string { return "StockReserved" }

// EventType returns "ReservationRefused".
func (ReservationRefused) EventType() string { return "ReservationRefused" }

// EventType returns "ReservationReleased".
func (ReservationReleased) EventType() string { return "ReservationReleased" }

// EventType returns "ReservationCommitted".
func (ReservationCommitted) EventType() string { return "ReservationCommitted" }

// OccurredAt returns At.
func (e OnHandSet) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e Restocked) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e StockReserved) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e ReservationRefused) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e ReservationReleased) OccurredAt() time.Time { return e.At }

// OccurredAt returns At.
func (e ReservationCommitted) OccurredAt() time.Time { return e.At }

var (
	_ SKUEvent = OnHandSet{}
	_ SKUEvent = Restocked{}
	_ SKUEvent = StockReserved{}
	_ SKUEvent = ReservationRefused{}
	_ SKUEvent = ReservationReleased{}
	_ SKUEvent = ReservationCommitted{}
)
