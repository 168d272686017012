package tracing

import "go.opentelemetry.io/otel/attribute"

// The engine's own span attributes.
const (
	requestIDKey = attribute.Key("engine.request_id")
	// AggregateKey and AggregateIDKey name the aggregate an append or
	// apply is about: "order" and its id, "inventory" and the SKU.
	AggregateKey   = attribute.Key("engine.aggregate")
	AggregateIDKey = attribute.Key("engine.aggregate_id")
	// EventsKey counts events (an append's, a projection batch's).
	EventsKey = attribute.Key("engine.events")
	// MessagesKey and CommandsKey size a group-commit batch.
	MessagesKey = attribute.Key("engine.messages")
	CommandsKey = attribute.Key("engine.commands")
	// EventTypeKey is one event's type; SeqKey its stream sequence; ShardKey
	// its shard.
	EventTypeKey = attribute.Key("engine.event_type")
	SeqKey       = attribute.Key("engine.seq")
	LastSeqKey   = attribute.Key("engine.last_seq")
	SubjectKey   = attribute.Key("engine.subject")
	// ProjectionKey names the projection that applies events.
	ProjectionKey = attribute.Key("engine.projection")
	ShardKey      = attribute.Key("engine.shard")
	// SKUKey and ReservationIDKey name a reservation request.
	SKUKey           = attribute.Key("engine.sku")
	ReservationIDKey = attribute.Key("engine.reservation_id")
	OrderIDKey       = attribute.Key("engine.order_id")
	// GrantedKey is a reservation outcome: stock granted or refused.
	GrantedKey = attribute.Key("engine.granted")
	// ToldByKey says who appended an outcome to its order: "decision"
	// (in the SKU decision's own batch) or "saga".
	ToldByKey = attribute.Key("engine.told_by")
)
