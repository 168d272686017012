package eventstore

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orderengine/engine/domain"
)

// NewOrderKind stores orders on orders.<order_id>. Every order append also
// stores, in the same atomic batch, the reservation requests its events ask
// for, so a placed order can never lose its reservation requests. A
// confirmation carries its expiry due (ttl after the stock was granted) in
// the Engine-Due header of its own message: the expiry worker reads the
// order subjects and needs no timer message of its own (ConsumeExpiries).
func NewOrderKind(ttl time.Duration) Kind[domain.Order, domain.OrderEvent] {
	return Kind[domain.Order, domain.OrderEvent]{
		Name: "order", Prefix: OrderSubjects, SchemaVersionOf: domain.SchemaVersionOf, SnapshotFormat: 1,
		Evolve: domain.EvolveOrder, Encode: EncodeOrderEvent, Decode: DecodeOrderEvent,
		OccurredAt: func(e domain.OrderEvent) time.Time { return e.OccurredAt() },
		Outbox: func(before domain.Order, events []domain.OrderEvent, after Snapshot[domain.Order]) ([]*nats.Msg, error) {
			var out []*nats.Msg
			for _, r := range domain.ReservationRequestsFor(before, events) {
				m, err := reservationMsg(r)
				if err != nil {
					return nil, err
				}
				out = append(out, m)
			}
			return out, nil
		},
		Headers: func(e domain.OrderEvent, after domain.Order) nats.Header {
			c, ok := e.(domain.OrderConfirmed)
			if !ok {
				return nil
			}
			// The TTL runs from the grant; when the confirmation came later
			// than that (a hand-over delayed it), the order is due at once
			// rather than at a time already past.
			return nats.Header{dueHeader: []string{latest(after.ExpiryDue(ttl), c.At).UTC().Format(time.RFC3339Nano)}}
		},
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// SKUKind stores inventory on inventory.<sku>.
var SKUKind = Kind[domain.SKU, domain.SKUEvent]{
	Name: "inventory", Prefix: InventorySubjects, SchemaVersionOf: domain.SchemaVersionOf,
	Evolve: domain.EvolveSKU, EvolveAll: domain.EvolveSKUAll,
	Encode: EncodeSKUEvent, Decode: DecodeSKUEvent,
	// Format 1: the SKU holds only its held reservations (domain.HeldSet).
	// Format 2: its request sequences are per shard (SKU.RequestSeqs).
	SnapshotFormat: 2,
	OccurredAt:     func(e domain.SKUEvent) time.Time { return e.OccurredAt() },
}
