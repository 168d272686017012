package domain

import (
	"encoding/json"

	"github.com/cockroachdb/errors"
)

// SchemaVersion is the schema version every event type started at. The
// current version of a type, the one stored in the envelope, is
// SchemaVersionOf(type): to change a type's shape, add an upcaster for it
// in upcast.go, which bumps its version and upgrades the older payloads the
// decoders will still meet in the store.
const SchemaVersion = 1

// EncodeOrderEvent returns the envelope type name and the JSON payload of
// e. It fails only for a value outside the closed set (nil or a pointer),
// so a stored payload always decodes back to the same value type.
func EncodeOrderEvent(e OrderEvent) (typ string, data []byte, err error) {
	switch e.(type) {
	case OrderPlaced, OrderConfirmed, OrderRejected, OrderPaid,
		OrderShipped, OrderDelivered, OrderCancelled, OrderExpired,
		LineReserved, LineRefused, OrderRefunded, LinesReturned:
	default:
		return "", nil, errors.AssertionFailedf("domain: cannot encode order event %T", e)
	}
	data, err = json.Marshal(e)
	if err != nil {
		return "", nil, errors.Wrapf(err, "encode %s", e.EventType())
	}
	return e.EventType(), data, nil
}

// DecodeOrderEvent rebuilds an order event from its envelope type name,
// schema version and JSON payload. It is strict on the type (an unknown
// name or schema version is an error: skipping it would silently corrupt
// the state) and lenient on unknown JSON fields, so an older binary can
// still read events written by a newer one that only added fields. A
// payload of an older schema version is upcast to the current one first.
func DecodeOrderEvent(typ string, schemaVersion int, data []byte) (OrderEvent, error) {
	data, err := checkAndUpcast(typ, schemaVersion, data)
	if err != nil {
		return nil, err
	}
	switch typ {
	case OrderPlaced{}.EventType():
		return decodeOrder[OrderPlaced](typ, data)
	case OrderConfirmed{}.EventType():
		return decodeOrder[OrderConfirmed](typ, data)
	case OrderRejected{}.EventType():
		return decodeOrder[OrderRejected](typ, data)
	case OrderPaid{}.EventType():
		return decodeOrder[OrderPaid](typ, data)
	case OrderShipped{}.EventType():
		return decodeOrder[OrderShipped](typ, data)
	case OrderDelivered{}.EventType():
		return decodeOrder[OrderDelivered](typ, data)
	case OrderCancelled{}.EventType():
		return decodeOrder[OrderCancelled](typ, data)
	case OrderExpired{}.EventType():
		return decodeOrder[OrderExpired](typ, data)
	case LineReserved{}.EventType():
		return decodeOrder[LineReserved](typ, data)
	case LineRefused{}.EventType():
		return decodeOrder[LineRefused](typ, data)
	case OrderRefunded{}.EventType():
		return decodeOrder[OrderRefunded](typ, data)
	case LinesReturned{}.EventType():
		return decodeOrder[LinesReturned](typ, data)
	default:
		return nil, errors.Newf("domain: unknown order event type %q", typ)
	}
}

// EncodeSKUEvent returns the envelope type name and the JSON payload of
// e; like EncodeOrderEvent it refuses values outside the closed set.
func EncodeSKUEvent(e SKUEvent) (string, []byte, error) {
	switch e.(type) {
	case OnHandSet, Restocked, StockReserved, ReservationRefused,
		ReservationReleased, ReservationCommitted, ReservationsDecided:
	default:
		return "", nil, errors.AssertionFailedf("domain: cannot encode SKU event %T", e)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return "", nil, errors.Wrapf(err, "encode %s", e.EventType())
	}
	return e.EventType(), data, nil
}

// DecodeSKUEvent rebuilds a SKU event; see DecodeOrderEvent for the rules.
func DecodeSKUEvent(typ string, schemaVersion int, data []byte) (SKUEvent, error) {
	data, err := checkAndUpcast(typ, schemaVersion, data)
	if err != nil {
		return nil, err
	}
	switch typ {
	case OnHandSet{}.EventType():
		return decodeSKU[OnHandSet](typ, data)
	case Restocked{}.EventType():
		return decodeSKU[Restocked](typ, data)
	case StockReserved{}.EventType():
		return decodeSKU[StockReserved](typ, data)
	case ReservationRefused{}.EventType():
		return decodeSKU[ReservationRefused](typ, data)
	case ReservationReleased{}.EventType():
		return decodeSKU[ReservationReleased](typ, data)
	case ReservationCommitted{}.EventType():
		return decodeSKU[ReservationCommitted](typ, data)
	case ReservationsDecided{}.EventType():
		return decodeSKU[ReservationsDecided](typ, data)
	default:
		return nil, errors.Newf("domain: unknown SKU event type %q", typ)
	}
}

// checkAndUpcast refuses versions this binary does not know (a newer one
// may have changed the meaning of a field, not only added one) and upcasts
// older ones to the current version.
func checkAndUpcast(typ string, v int, data []byte) ([]byte, error) {
	if v < 1 || v > SchemaVersionOf(typ) {
		return nil, errors.WithHint(
			errors.Newf("domain: unsupported schema version %d for event type %q", v, typ),
			"the event was written by a newer engine; upgrade before replaying it")
	}
	return upcast(typ, v, data)
}

// decodeOrder unmarshals data into a T and returns it as a value, never a
// pointer, because EvolveOrder switches on value types; on error the
// event is a nil interface, not a zero T.
func decodeOrder[T OrderEvent](typ string, data []byte) (OrderEvent, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, errors.Wrapf(err, "decode %s", typ)
	}
	return v, nil
}

// decodeSKU is decodeOrder for SKU events.
func decodeSKU[T SKUEvent](typ string, data []byte) (SKUEvent, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, errors.Wrapf(err, "decode %s", typ)
	}
	return v, nil
}
