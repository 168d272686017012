// Package feed is the engine's public integration contract: the order
// events that payment, fulfilment, e-mail and ERP systems build on,
// published on NATS under feed.v1.order.<order_id>.<name> and delivered to
// webhooks. docs/feed.md documents it; docs/feed/schemas holds a JSON
// schema per event type and version.
//
// It is a published language, not the store's envelopes: the domain's
// events are upcast to their current version and translated into the
// types below, which keep their names and fields however the domain's
// change. A field is never renamed or given a new meaning within a
// version; a change that would is a new version of the type.
package feed

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// Event is one integration event, as published on NATS and posted to
// webhooks.
type Event struct {
	// ID identifies the source event, "<order_id>:<order_version>": the
	// same on every redelivery, so consumers deduplicate on it.
	ID string `json:"id"`
	// Type is the stable dotted name ("order.placed").
	Type string `json:"type"`
	// Version is the version of the type's schema that Data follows.
	Version      int       `json:"version"`
	OrderID      string    `json:"order_id"`
	OrderVersion uint64    `json:"order_version"`
	OccurredAt   time.Time `json:"occurred_at"`
	// Data is the type's payload (OrderPlaced, OrderPaid, ...).
	Data json.RawMessage `json:"data"`
}

// The event types of the contract, version 1 each.
const (
	TypeOrderPlaced    = "order.placed"
	TypeOrderConfirmed = "order.confirmed"
	TypeOrderRejected  = "order.rejected"
	TypeOrderPaid      = "order.paid"
	TypeOrderShipped   = "order.shipped"
	TypeOrderDelivered = "order.delivered"
	TypeOrderCancelled = "order.cancelled"
	TypeOrderExpired   = "order.expired"
	TypeOrderRefunded  = "order.refunded"
	TypeOrderReturned  = "order.returned"
)

// Types lists every type the feed emits with its current version.
var Types = map[string]int{
	TypeOrderPlaced: 1, TypeOrderConfirmed: 1, TypeOrderRejected: 1, TypeOrderPaid: 1,
	TypeOrderShipped: 1, TypeOrderDelivered: 1, TypeOrderCancelled: 1, TypeOrderExpired: 1,
	TypeOrderRefunded: 1, TypeOrderReturned: 1,
}

// OrderPlaced is the data of order.placed v1.
type OrderPlaced struct {
	CustomerID string `json:"customer_id"`
	Currency   string `json:"currency"`
	Lines      []Line `json:"lines"`
	TotalCents int64  `json:"total_cents"`
}

// Line is one line of a placed order; amounts are in the currency's minor
// units.
type Line struct {
	SKU            string `json:"sku"`
	Qty            int64  `json:"qty"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// OrderConfirmed is the data of order.confirmed v1: every line's stock is
// reserved and the order awaits payment.
type OrderConfirmed struct{}

// OrderRejected is the data of order.rejected v1.
type OrderRejected struct {
	Reason    string   `json:"reason"`
	ShortSKUs []string `json:"short_skus"`
}

// OrderPaid is the data of order.paid v1.
type OrderPaid struct {
	AmountCents int64  `json:"amount_cents"`
	PaymentRef  string `json:"payment_ref"`
}

// OrderShipped is the data of order.shipped v1.
type OrderShipped struct {
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"tracking_number"`
}

// OrderDelivered is the data of order.delivered v1.
type OrderDelivered struct{}

// OrderCancelled is the data of order.cancelled v1. CancelledBy is
// "customer", "operator", "system", or "unknown" for cancellations
// recorded before the engine kept who cancelled.
type OrderCancelled struct {
	Reason         string `json:"reason"`
	CancelledBy    string `json:"cancelled_by"`
	RefundDueCents int64  `json:"refund_due_cents"`
}

// OrderExpired is the data of order.expired v1: a confirmed order stayed
// unpaid past its reservation's time to live.
type OrderExpired struct{}

// OrderRefunded is the data of order.refunded v1: a partial refund.
type OrderRefunded struct {
	AmountCents        int64  `json:"amount_cents"`
	Reason             string `json:"reason"`
	RefundedTotalCents int64  `json:"refunded_total_cents"`
}

// OrderReturned is the data of order.returned v1: units of a delivered
// order came back.
type OrderReturned struct {
	Lines              []ReturnedLine `json:"lines"`
	Reason             string         `json:"reason"`
	RefundCents        int64          `json:"refund_cents"`
	RefundedTotalCents int64          `json:"refunded_total_cents"`
}

// ReturnedLine is one line of a return.
type ReturnedLine struct {
	SKU         string `json:"sku"`
	Qty         int64  `json:"qty"`
	RefundCents int64  `json:"refund_cents"`
}

// Translate turns a stored order event into its integration event; ok is
// false for events the contract does not publish (the per-line
// reservation steps, which order.confirmed and order.rejected sum up, and
// every inventory event). It fails for an envelope the domain cannot
// decode (a type or schema version newer than this engine).
func Translate(env eventstore.Envelope) (ev Event, ok bool, err error) {
	if env.AggregateType != "order" {
		return Event{}, false, nil
	}
	de, err := eventstore.DecodeOrderEvent(env.Type, env.SchemaVersion, env.Data)
	if err != nil {
		return Event{}, false, errors.Wrapf(err, "translate %s v%d of order %s", env.Type, env.SchemaVersion, env.AggregateID)
	}
	var typ string
	var data any
	switch e := de.(type) {
	case domain.OrderPlaced:
		lines := make([]Line, len(e.Lines))
		for i, l := range e.Lines {
			lines[i] = Line{SKU: l.SKU, Qty: l.Qty, UnitPriceCents: l.UnitPriceCents}
		}
		typ, data = TypeOrderPlaced, OrderPlaced{CustomerID: e.CustomerID, Currency: e.Currency, Lines: lines, TotalCents: e.TotalCents}
	case domain.OrderConfirmed:
		typ, data = TypeOrderConfirmed, OrderConfirmed{}
	case domain.OrderRejected:
		short := e.ShortSKUs
		if short == nil {
			short = []string{}
		}
		typ, data = TypeOrderRejected, OrderRejected{Reason: e.Reason, ShortSKUs: short}
	case domain.OrderPaid:
		typ, data = TypeOrderPaid, OrderPaid{AmountCents: e.AmountCents, PaymentRef: e.PaymentRef}
	case domain.OrderShipped:
		typ, data = TypeOrderShipped, OrderShipped{Carrier: e.Carrier, TrackingNumber: e.TrackingNumber}
	case domain.OrderDelivered:
		typ, data = TypeOrderDelivered, OrderDelivered{}
	case domain.OrderCancelled:
		typ, data = TypeOrderCancelled, OrderCancelled{Reason: e.Reason, CancelledBy: e.CancelledBy, RefundDueCents: e.RefundDueCents}
	case domain.OrderExpired:
		typ, data = TypeOrderExpired, OrderExpired{}
	case domain.OrderRefunded:
		typ, data = TypeOrderRefunded, OrderRefunded{AmountCents: e.AmountCents, Reason: e.Reason, RefundedTotalCents: e.RefundedCents}
	case domain.LinesReturned:
		lines := make([]ReturnedLine, len(e.Lines))
		for i, l := range e.Lines {
			lines[i] = ReturnedLine{SKU: l.SKU, Qty: l.Qty, RefundCents: l.RefundCents}
		}
		typ, data = TypeOrderReturned, OrderReturned{Lines: lines, Reason: e.Reason, RefundCents: e.RefundCents, RefundedTotalCents: e.RefundedCents}
	case domain.LineReserved, domain.LineRefused:
		return Event{}, false, nil
	default:
		return Event{}, false, errors.AssertionFailedf("feed: no translation for %T", de)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, false, errors.Wrapf(err, "encode %s", typ)
	}
	return Event{
		ID: EventID(env.AggregateID, env.Version), Type: typ, Version: Types[typ],
		OrderID: env.AggregateID, OrderVersion: env.Version, OccurredAt: env.OccurredAt.UTC(), Data: raw,
	}, true, nil
}

// EventID returns the id of version v of order id's events.
func EventID(orderID string, v uint64) string {
	return orderID + ":" + strconv.FormatUint(v, 10)
}

// Subject returns the NATS subject an event is published on:
// feed.v1.order.<order_id>.<name>, so that a reader filters one type
// (feed.v1.order.*.paid) or one order (feed.v1.order.<id>.>).
func Subject(ev Event) string {
	name := strings.TrimPrefix(ev.Type, "order.")
	return SubjectPrefix + ev.OrderID + "." + name
}

// SubjectPrefix starts the subject of every order event of contract v1.
const SubjectPrefix = eventstore.FeedSubjects + ".v1.order."

// Headers on every feed message, beside Nats-Msg-Id (the event's ID).
const (
	HeaderType    = "Engine-Event-Type"
	HeaderVersion = "Engine-Event-Version"
	// HeaderSource is the forwarder's position in the event store when
	// it published the message: "<shard>:<seq>" per shard, comma
	// separated. It is for the forwarder's own resumption, not part of
	// the contract.
	HeaderSource = "Engine-Source"
)
