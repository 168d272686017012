package eventstore_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/orderengine/engine/eventstore"
)

// benchEnvelope is an OrderPlaced envelope of the usual size (two lines).
func benchEnvelope() eventstore.Envelope {
	return eventstore.Envelope{
		Type: "OrderPlaced", SchemaVersion: 1, AggregateType: "order",
		AggregateID: "0196f4a8-3c1e-7b52-9d0e-2f6a1b7c8d90", Version: 1,
		OccurredAt: time.Date(2026, 11, 30, 9, 0, 0, 123456789, time.UTC),
		CommandID:  "0196f4a8-3c1e-7b52-9d0e-2f6a1b7c8d91", CausationID: "req-42", CorrelationID: "checkout-7",
		Data: json.RawMessage(`{"order_id":"0196f4a8-3c1e-7b52-9d0e-2f6a1b7c8d90","customer_id":"c1","currency":"USD",` +
			`"lines":[{"sku":"SKU-1","qty":2,"unit_price_cents":1999},{"sku":"SKU-2","qty":1,"unit_price_cents":500}],"total_cents":4498}`),
	}
}

// BenchmarkSeal is the hash chain's cost per appended event: the SHA-256
// over the previous hash and the envelope's canonical fields.
func BenchmarkSeal(b *testing.B) {
	e := benchEnvelope()
	prev := "9f2c4b1a7d3e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
	b.ReportAllocs()
	for b.Loop() {
		e.Seal(prev)
	}
}

// BenchmarkEncodeEnvelope is the JSON encoding of a sealed envelope, as
// the append publishes it.
func BenchmarkEncodeEnvelope(b *testing.B) {
	e := benchEnvelope()
	e.Seal("")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEnvelope is the other way, as every reader of the store
// (aggregate loads, projections, audit) pays it.
func BenchmarkDecodeEnvelope(b *testing.B) {
	e := benchEnvelope()
	e.Seal("")
	data, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := eventstore.DecodeEnvelope(data); err != nil {
			b.Fatal(err)
		}
	}
}
