package domain

import (
	"bytes"
	"testing"
)

// FuzzDecodeEvent feeds arbitrary type names, schema versions and payloads
// to both event decoders, as a replay or a projection would from an
// envelope it cannot trust. A decoder must never panic; it must refuse an
// unknown type and a version outside 1..SchemaVersionOf(type); and what it
// accepts must be an event of that type that folds without panicking and
// survives the codec: encoding it, decoding that and encoding again gives
// the same bytes (the same bytes, not reflect.DeepEqual, because times in
// other zones decode with a fresh *time.Location each time).
func FuzzDecodeEvent(f *testing.F) {
	f.Fuzz(func(t *testing.T, typ string, version int, data []byte) {
		o, oerr := DecodeOrderEvent(typ, version, data)
		s, serr := DecodeSKUEvent(typ, version, data)
		if oerr == nil && serr == nil {
			t.Fatalf("%s decodes both as an order event and as a SKU event", typ)
		}
		if oerr != nil && o != nil || serr != nil && s != nil {
			t.Fatalf("an error with an event: %#v, %v; %#v, %v", o, oerr, s, serr)
		}
		if oerr == nil || serr == nil {
			if version < 1 || version > SchemaVersionOf(typ) {
				t.Fatalf("%s v%d decoded; the current version is %d", typ, version, SchemaVersionOf(typ))
			}
		}
		if oerr == nil {
			if o == nil || o.EventType() != typ {
				t.Fatalf("%s decoded to %#v", typ, o)
			}
			EvolveOrder(Order{}, o)
			EvolveOrder(fuzzPaidOrder(t), o)
			fuzzStable(t, typ, o, EncodeOrderEvent, DecodeOrderEvent)
		}
		if serr == nil {
			if s == nil || s.EventType() != typ {
				t.Fatalf("%s decoded to %#v", typ, s)
			}
			EvolveSKU(SKU{}, s)
			fuzzStable(t, typ, s, EncodeSKUEvent, DecodeSKUEvent)
		}
	})
}

// fuzzStable checks that e, decoded from a payload of type typ, encodes
// under typ and that its encoding is a fixed point of decode and encode.
func fuzzStable[E any](t *testing.T, typ string, e E,
	encode func(E) (string, []byte, error), decode func(string, int, []byte) (E, error)) {
	t.Helper()
	gotType, once, err := encode(e)
	if err != nil || gotType != typ {
		t.Fatalf("%s re-encodes as %q: %v", typ, gotType, err)
	}
	back, err := decode(typ, SchemaVersionOf(typ), once)
	if err != nil {
		t.Fatalf("%s does not decode its own encoding %s: %v", typ, once, err)
	}
	_, twice, err := encode(back)
	if err != nil || !bytes.Equal(once, twice) {
		t.Fatalf("%s encodes as %s, then as %s (%v)", typ, once, twice, err)
	}
}

// fuzzPaidOrder is an order with lines and a payment, for events to fold
// onto a state that is not empty.
func fuzzPaidOrder(t *testing.T) Order {
	t.Helper()
	s := Order{}
	for _, c := range []OrderCommand{validPlace(), ConfirmOrder{At: t0}, PayOrder{AmountCents: 0, PaymentRef: "p", At: t0}} {
		if p, ok := c.(PayOrder); ok {
			p.AmountCents = s.TotalCents
			c = p
		}
		events, err := DecideOrder(s, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		for _, e := range events {
			s = EvolveOrder(s, e)
		}
	}
	return s
}
