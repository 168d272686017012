package domain

import (
	"encoding/json"

	"github.com/cockroachdb/errors"
)

// This file is the one place where event schemas evolve. When an event
// type's JSON shape changes, append an upcaster for it below: it turns a
// stored payload of version From into one of version From+1. The current
// version of a type is one more than the number of its upcasters, the
// encoder stores that version, and the decoders run every upcaster from the
// stored version up, so history written by any older engine stays readable.

// upcaster upgrades one event type's stored JSON by one schema version.
type upcaster struct {
	Type string
	From int
	Up   func(fields map[string]json.RawMessage) error
}

// upcasters, oldest first per type.
var upcasters = []upcaster{
	// OrderConfirmed v2 added sku and granted_at (the grant that completed
	// the order), OrderRejected v2 added available: each now says what a
	// LineReserved or LineRefused before it said. A v1 event has neither,
	// and reads back as it was stored; the version tells an older engine
	// that it cannot read the new ones.
	{Type: "OrderConfirmed", From: 1, Up: func(map[string]json.RawMessage) error { return nil }},
	{Type: "OrderRejected", From: 1, Up: func(map[string]json.RawMessage) error { return nil }},
	// OrderCancelled v2 added cancelled_by. Who cancelled a v1 event was
	// never recorded, so it reads back as "unknown".
	{Type: "OrderCancelled", From: 1, Up: func(f map[string]json.RawMessage) error {
		if _, ok := f["cancelled_by"]; !ok {
			f["cancelled_by"] = json.RawMessage(`"` + CancelledByUnknown + `"`)
		}
		return nil
	}},
}

// Who cancelled an order, in OrderCancelled.CancelledBy.
const (
	CancelledByCustomer = "customer"
	CancelledByOperator = "operator"
	CancelledBySystem   = "system"
	// CancelledByUnknown marks cancellations stored before the engine
	// recorded who cancelled (schema version 1).
	CancelledByUnknown = "unknown"
)

// SchemaVersionOf returns the current schema version of eventType, the one
// the encoder stores: 1 for a type whose shape never changed.
func SchemaVersionOf(eventType string) int {
	v := SchemaVersion
	for _, u := range upcasters {
		if u.Type == eventType {
			v++
		}
	}
	return v
}

// upcast upgrades the payload of an event of type typ stored as schema
// version from to the current version. The version must have been checked.
func upcast(typ string, from int, data []byte) ([]byte, error) {
	var fields map[string]json.RawMessage
	for _, u := range upcasters {
		if u.Type != typ || u.From < from {
			continue
		}
		if fields == nil {
			if err := json.Unmarshal(data, &fields); err != nil {
				return nil, errors.Wrapf(err, "decode %s v%d for upcasting", typ, from)
			}
			if fields == nil { // the payload was JSON null
				fields = map[string]json.RawMessage{}
			}
		}
		if err := u.Up(fields); err != nil {
			return nil, errors.Wrapf(err, "upcast %s v%d to v%d", typ, u.From, u.From+1)
		}
	}
	if fields == nil {
		return data, nil
	}
	out, err := json.Marshal(fields)
	return out, errors.Wrapf(err, "encode upcast %s", typ)
}
