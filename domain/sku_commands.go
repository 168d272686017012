package domain

import "time"

// SKUCommand is the closed set of commands DecideSKU understands, sealed
// by the unexported method.
type SKUCommand interface {
	isSKUCommand()
}

// SetOnHand sets the counted stock of a SKU, creating the SKU if needed.
type SetOnHand struct {
	SKU    string
	OnHand int64
	At     time.Time
}

// Restock adds received stock to an existing SKU.
type Restock struct {
	SKU string
	Qty int64
	At  time.Time
}

// Reserve asks to hold Qty units for an order under ReservationID, which
// later releases or commits name (see ReservationID).
type Reserve struct {
	SKU           string
	ReservationID string
	OrderID       string
	Qty           int64
	At            time.Time
}

// Release gives a held reservation back to the available stock (order
// rejected, cancelled or expired).
type Release struct {
	SKU           string
	ReservationID string
	At            time.Time
}

// CommitReservation takes a held reservation out of stock for good (order
// shipped).
type CommitReservation struct {
	SKU           string
	ReservationID string
	At            time.Time
}

func (SetOnHand) isSKUCommand()         {}
func (Restock) isSKUCommand()           {}
func (Reserve) isSKUCommand()           {}
func (Release) isSKUCommand()           {}
func (CommitReservation) isSKUCommand() {}

var (
	_ SKUCommand = SetOnHand{}
	_ SKUCommand = Restock{}
	_ SKUCommand = Reserve{}
	_ SKUCommand = Release{}
	_ SKUCommand = CommitReservation{}
)
