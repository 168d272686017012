package eventstore

import (
	"time"

	"github.com/orderengine/engine/domain"
)

// OrderKind stores orders on orders.<order_id>.
var OrderKind = Kind[domain.Order, domain.OrderEvent]{
	Name: "order", Prefix: OrderSubjects, SchemaVersion: domain.SchemaVersion,
	Evolve: domain.EvolveOrder, Encode: domain.EncodeOrderEvent, Decode: domain.DecodeOrderEvent,
	OccurredAt: func(e domain.OrderEvent) time.Time { return e.OccurredAt() },
}

// SKUKind stores inventory on inventory.<sku>.
var SKUKind = Kind[domain.SKU, domain.SKUEvent]{
	Name: "inventory", Prefix: InventorySubjects, SchemaVersion: domain.SchemaVersion,
	Evolve: domain.EvolveSKU, Encode: domain.EncodeSKUEvent, Decode: domain.DecodeSKUEvent,
	OccurredAt: func(e domain.SKUEvent) time.Time { return e.OccurredAt() },
}
