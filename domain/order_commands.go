package domain

import "time"

// OrderCommand is the closed set of commands DecideOrder understands. The
// unexported method seals it: only this package can add a command, so the
// type switch in DecideOrder stays exhaustive.
type OrderCommand interface {
	isOrderCommand()
}

// PlaceOrder creates an order. OrderID is assigned by the server before
// the command is built, so a retried request can be recognised.
type PlaceOrder struct {
	OrderID    string
	CustomerID string
	Currency   string
	Lines      []Line
	At         time.Time
}

// ConfirmOrder records the reservation outcome "every line reserved"; the
// saga sends it, possibly more than once.
type ConfirmOrder struct {
	At time.Time
}

// RejectOrder records the reservation outcome "some line short"; the saga
// sends it, possibly more than once.
type RejectOrder struct {
	Reason    string
	ShortSKUs []string
	At        time.Time
}

// PayOrder records a payment; AmountCents must equal the order total
// because partial payments are not part of the contract.
type PayOrder struct {
	AmountCents int64
	PaymentRef  string
	At          time.Time
}

// ShipOrder records the hand-over to a carrier.
type ShipOrder struct {
	Carrier        string
	TrackingNumber string
	At             time.Time
}

// DeliverOrder records the delivery of a shipped order.
type DeliverOrder struct {
	At time.Time
}

// CancelOrder cancels an order that has not shipped yet; Reason is
// optional. By says who cancels: "customer" (the default when empty),
// "operator" or "system".
type CancelOrder struct {
	Reason string
	By     string
	At     time.Time
}

// ExpireOrder lets a confirmed, unpaid order give its stock back once TTL
// has passed since its stock was granted (Order.ExpiryDue). The TTL travels with the command because
// it is configuration, and the domain must not read configuration.
type ExpireOrder struct {
	TTL time.Duration
	At  time.Time
}

// RecordReservation reports the SKU aggregate's answer to the reserve
// request of one line. The reservation processor sends it once per line,
// possibly more than once, and possibly after the order has moved on.
// Available is what the SKU could still grant, reported on a refusal.
// GrantedAt is when the SKU granted it (the time of its decision), from
// which the reservation's TTL runs; zero when unknown.
type RecordReservation struct {
	SKU       string
	Granted   bool
	Available int64
	GrantedAt time.Time
	At        time.Time
}

func (PlaceOrder) isOrderCommand()        {}
func (ConfirmOrder) isOrderCommand()      {}
func (RejectOrder) isOrderCommand()       {}
func (PayOrder) isOrderCommand()          {}
func (ShipOrder) isOrderCommand()         {}
func (DeliverOrder) isOrderCommand()      {}
func (CancelOrder) isOrderCommand()       {}
func (ExpireOrder) isOrderCommand()       {}
func (RecordReservation) isOrderCommand() {}

var (
	_ OrderCommand = PlaceOrder{}
	_ OrderCommand = ConfirmOrder{}
	_ OrderCommand = RejectOrder{}
	_ OrderCommand = PayOrder{}
	_ OrderCommand = ShipOrder{}
	_ OrderCommand = DeliverOrder{}
	_ OrderCommand = CancelOrder{}
	_ OrderCommand = ExpireOrder{}
	_ OrderCommand = RecordReservation{}
)
