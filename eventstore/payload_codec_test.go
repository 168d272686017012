package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/engine/domain"
)

var payloadT0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func payloadPlaced() domain.OrderPlaced {
	return domain.OrderPlaced{OrderID: "01890a5d-ac96-774b-bcce-b302099a8057", CustomerID: "cust_1", Currency: "EUR",
		Lines:      []domain.Line{{SKU: "apple", Qty: 2, UnitPriceCents: 150}, {SKU: "pear-1", Qty: 3, UnitPriceCents: 1000}},
		TotalCents: 3300, At: payloadT0}
}

// readPlainInto reads data into *v with the hand-written reader of v's
// payload type; ok is false when the reader leaves it to encoding/json.
func readPlainInto(v any, data []byte) bool {
	switch p := v.(type) {
	case *domain.OrderPlaced:
		return readAll(p, data, readOrderPlaced)
	case *domain.OrderConfirmed:
		return readAll(p, data, readOrderConfirmed)
	case *domain.OrderRejected:
		return readAll(p, data, readOrderRejected)
	case *domain.ReservationsDecided:
		return readAll(p, data, readReservationsDecided)
	case *domain.StockReserved:
		return readAll(p, data, readStockReserved)
	case *domain.ReservationRefused:
		return readAll(p, data, readReservationRefused)
	case *domain.ReservationReleased:
		return readAll(p, data, readReservationReleased)
	case *domain.ReservationCommitted:
		return readAll(p, data, readReservationCommitted)
	}
	panic(fmt.Sprintf("no hand-written reader for %T", v))
}

// plainPayloads is one zero value per payload with a hand-written codec,
// to decode into.
func plainPayloads() []any {
	return []any{domain.OrderPlaced{}, domain.OrderConfirmed{}, domain.OrderRejected{}, domain.ReservationsDecided{},
		domain.StockReserved{}, domain.ReservationRefused{}, domain.ReservationReleased{}, domain.ReservationCommitted{}}
}

// decodeBoth decodes data into a fresh value of zero's type twice, with
// the hand-written reader and with encoding/json. plain says whether the
// reader took it; when it did, both values must be the same. decoded and
// jsonErr are encoding/json's answer.
func decodeBoth(t *testing.T, zero any, data []byte) (plain bool, decoded any, jsonErr error) {
	t.Helper()
	fast := reflect.New(reflect.TypeOf(zero))
	want := reflect.New(reflect.TypeOf(zero))
	jsonErr = json.Unmarshal(data, want.Interface())
	decoded = want.Elem().Interface()
	if !readPlainInto(fast.Interface(), data) {
		return false, decoded, jsonErr
	}
	if jsonErr != nil {
		t.Fatalf("%T %s: read by hand, refused by encoding/json: %v", zero, data, jsonErr)
	}
	if got := fast.Elem().Interface(); !reflect.DeepEqual(got, decoded) {
		t.Fatalf("%T %s:\nby hand       %#v\nencoding/json %#v", zero, data, got, decoded)
	}
	return true, decoded, nil
}

// TestPlainPayloadsReadWhatEncodingJSONReads takes payloads as the engine
// stores them and changes one thing at a time: what the reader takes must
// be what encoding/json reads, and what it leaves must be what it cannot
// be sure of.
func TestPlainPayloadsReadWhatEncodingJSONReads(t *testing.T) {
	t.Parallel()
	avail := int64(0)
	stored := map[string]any{}
	for _, e := range []any{
		payloadPlaced(),
		domain.OrderConfirmed{SKU: "apple", GrantedAt: payloadT0, At: payloadT0.Add(time.Millisecond)},
		domain.OrderRejected{Reason: "insufficient_stock", ShortSKUs: []string{"a", "b"}, Available: &avail, At: payloadT0},
		domain.ReservationsDecided{Decisions: []domain.ReservationDecision{
			{Reserved: &domain.StockReserved{ReservationID: "r1", OrderID: "o1", Qty: 2, At: payloadT0}, Told: true},
			{Refused: &domain.ReservationRefused{ReservationID: "r2", OrderID: "o2", Qty: 9, Available: 1, At: payloadT0}},
			{Released: &domain.ReservationReleased{ReservationID: "r3", Qty: 1, At: payloadT0}},
			{Committed: &domain.ReservationCommitted{ReservationID: "r4", Qty: 1, At: payloadT0}},
			{},
		}, Shard: 3, ThroughSeq: 77, Placed: true, At: payloadT0},
	} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		stored[reflect.TypeOf(e).Name()] = string(b)
	}
	placed, decided := stored["OrderPlaced"].(string), stored["ReservationsDecided"].(string)
	cases := []struct {
		name  string
		zero  any
		data  string
		plain bool // the reader takes it itself
	}{
		{"placed as stored", domain.OrderPlaced{}, placed, true},
		{"confirmed as stored", domain.OrderConfirmed{}, stored["OrderConfirmed"].(string), true},
		{"rejected as stored", domain.OrderRejected{}, stored["OrderRejected"].(string), true},
		{"decided as stored", domain.ReservationsDecided{}, decided, true},
		{"confirmed, version 1", domain.OrderConfirmed{}, `{"at":"2025-03-14T09:26:53Z"}`, true},
		{"spaces everywhere", domain.OrderPlaced{}, " { \"order_id\" : \"o\" ,\n\"lines\" : [ { \"qty\" : 1 } , {} ] }\t", true},
		{"keys in another order", domain.StockReserved{}, `{"at":"2025-03-14T10:26:53+01:00","qty":-3,"order_id":"o","reservation_id":"r"}`, true},
		{"no lines", domain.OrderPlaced{}, withLines(placed, `[]`), true},
		{"non-ASCII string", domain.OrderPlaced{}, `{"customer_id":"Zoë ☃"}`, true},
		{"-0", domain.Line{}, `{"qty":-0}`, true},
		{"told false", domain.ReservationsDecided{}, `{"decisions":[{"told":false}]}`, true},
		{"null lines", domain.OrderPlaced{}, withLines(placed, `null`), false},
		{"null pointer", domain.ReservationsDecided{}, `{"decisions":[{"reserved":null}]}`, false},
		{"escaped string", domain.OrderPlaced{}, `{"order_id":"o\u0041"}`, false},
		{"invalid UTF-8", domain.OrderPlaced{}, "{\"order_id\":\"o\xff\"}", false},
		{"unknown key", domain.OrderPlaced{}, `{"order_id":"o","gift":true}`, false},
		{"key in another case", domain.OrderPlaced{}, `{"Order_ID":"o"}`, false},
		{"repeated key", domain.ReservationsDecided{}, `{"decisions":[{"reserved":{"qty":1},"reserved":{"order_id":"o"}}]}`, false},
		{"repeated list", domain.OrderPlaced{}, `{"lines":[{"qty":1},{"qty":2}],"lines":[{"sku":"b"}]}`, false},
		{"fraction", domain.Line{}, `{"qty":1.0}`, false},
		{"exponent", domain.Line{}, `{"qty":1e2}`, false},
		{"leading zero", domain.Line{}, `{"qty":01}`, false},
		{"19 digits", domain.Line{}, `{"qty":1234567890123456789}`, false},
		{"negative uint", domain.ReservationsDecided{}, `{"through_seq":-1}`, false},
		{"string for a number", domain.Line{}, `{"qty":"1"}`, false},
		{"not a time", domain.OrderConfirmed{}, `{"at":"yesterday"}`, false},
		{"year 10000", domain.OrderConfirmed{}, `{"at":"10000-01-01T00:00:00Z"}`, false},
		{"trailing garbage", domain.OrderConfirmed{}, `{"at":"2025-03-14T09:26:53Z"}x`, false},
		{"two objects", domain.OrderConfirmed{}, `{}{}`, false},
		{"unclosed", domain.OrderPlaced{}, `{"lines":[{"qty":1}`, false},
		{"trailing comma", domain.OrderPlaced{}, `{"order_id":"o",}`, false},
		{"an array", domain.OrderPlaced{}, `[]`, false},
		{"empty", domain.OrderPlaced{}, ``, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			zero := c.zero
			if _, ok := zero.(domain.Line); ok {
				// A line is read inside a placement.
				zero, c.data = domain.OrderPlaced{}, `{"lines":[`+c.data+`]}`
			}
			plain, _, _ := decodeBoth(t, zero, []byte(c.data))
			if plain != c.plain {
				t.Fatalf("%s: read by hand %v, want %v", c.data, plain, c.plain)
			}
		})
	}
}

// withLines replaces the lines of a stored placement.
func withLines(placed, lines string) string {
	start := strings.Index(placed, `"lines":`) + len(`"lines":`)
	end := strings.Index(placed, `,"total_cents"`)
	return placed[:start] + lines + placed[end:]
}

// TestPlainPayloadsWriteWhatEncodingJSONWrites encodes values at the edges
// of the plain shape: what the writer writes must be encoding/json's
// bytes, and it must write every event the deciders produce itself.
func TestPlainPayloadsWriteWhatEncodingJSONWrites(t *testing.T) {
	t.Parallel()
	cet := time.FixedZone("CET", 3600)
	odd := time.FixedZone("LMT", 3600+17) // seconds in the offset: RFC 3339 cannot say them
	zero := int64(0)
	cases := []struct {
		e     any
		plain bool
	}{
		{payloadPlaced(), true},
		{domain.OrderPlaced{}, true}, // nil lines are null
		{domain.OrderPlaced{Lines: []domain.Line{}}, true},
		{domain.OrderPlaced{OrderID: "a<b"}, false},
		{domain.OrderPlaced{CustomerID: "Zoë"}, false},
		{domain.OrderPlaced{Currency: `"`}, false},
		{domain.OrderPlaced{At: payloadT0.In(cet)}, true},
		{domain.OrderPlaced{At: time.Now()}, true}, // monotonic reading, local zone
		{domain.OrderPlaced{At: payloadT0.In(odd)}, false},
		{domain.OrderPlaced{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, false},
		{domain.OrderConfirmed{}, true},
		{domain.OrderConfirmed{SKU: "a"}, true},
		{domain.OrderConfirmed{GrantedAt: payloadT0}, true},
		{domain.OrderRejected{}, true},
		{domain.OrderRejected{ShortSKUs: []string{}, Available: &zero}, true},
		{domain.OrderRejected{ShortSKUs: []string{"a", "b&"}}, false},
		{domain.ReservationsDecided{}, true},
		{domain.ReservationsDecided{Decisions: []domain.ReservationDecision{{}, {Told: true}}, Shard: -1, ThroughSeq: 1 << 63}, true},
		{domain.ReservationsDecided{Decisions: []domain.ReservationDecision{{
			Reserved: &domain.StockReserved{}, Refused: &domain.ReservationRefused{}, Released: &domain.ReservationReleased{},
			Committed: &domain.ReservationCommitted{}, Told: true}}}, true},
		{domain.StockReserved{Qty: -1 << 63}, true},
		{domain.ReservationRefused{Available: 1<<63 - 1}, true},
		{domain.ReservationReleased{ReservationID: "r"}, true},
		{domain.ReservationCommitted{ReservationID: "r\n"}, false},
	}
	for _, c := range cases {
		want, wantErr := json.Marshal(c.e)
		got, plain := encodePlain(c.e)
		if plain != c.plain {
			t.Errorf("%#v: written by hand %v, want %v", c.e, plain, c.plain)
		}
		if plain && (wantErr != nil || !bytes.Equal(got, want)) {
			t.Errorf("%#v:\nby hand       %s\nencoding/json %s (%v)", c.e, got, want, wantErr)
		}
	}
	if _, ok := encodePlain(domain.OrderPaid{}); ok {
		t.Fatal("OrderPaid has no hand-written encoding, yet one was written")
	}
}

// FuzzPlainPayloads decodes arbitrary bytes as each hand-coded payload,
// by hand and with encoding/json: the reader must take only what
// encoding/json reads, and read it the same; whatever encoding/json reads
// must encode to the same bytes by hand and with encoding/json; and the
// store's codec (what the readers call) must answer as the domain's.
func FuzzPlainPayloads(f *testing.F) {
	for _, e := range []any{payloadPlaced(), domain.OrderConfirmed{SKU: "a", GrantedAt: payloadT0, At: payloadT0},
		domain.OrderRejected{Reason: "r", ShortSKUs: []string{"a"}, At: payloadT0},
		domain.ReservationsDecided{Decisions: []domain.ReservationDecision{{Reserved: &domain.StockReserved{Qty: 1, At: payloadT0}, Told: true},
			{Released: &domain.ReservationReleased{ReservationID: "r"}}}, Placed: true, At: payloadT0}} {
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, zero := range plainPayloads() {
			_, e, err := decodeBoth(t, zero, data)
			if err != nil {
				continue
			}
			want, wantErr := json.Marshal(e)
			if got, ok := encodePlain(e); ok && (wantErr != nil || !bytes.Equal(got, want)) {
				t.Fatalf("%#v:\nby hand       %s\nencoding/json %s (%v)", e, got, want, wantErr)
			}
		}
		// What every reader calls must answer as the domain's codec does,
		// for every type, at the current schema version (which it may read
		// by hand) and another (which it must leave to the domain).
		for _, zero := range plainPayloads() {
			typ := zero.(interface{ EventType() string }).EventType()
			for _, v := range []int{domain.SchemaVersionOf(typ), domain.SchemaVersionOf(typ) + 1} {
				sameAnswer(t, typ, v, data, DecodeOrderEvent, domain.DecodeOrderEvent, EncodeOrderEvent, domain.EncodeOrderEvent)
				sameAnswer(t, typ, v, data, DecodeSKUEvent, domain.DecodeSKUEvent, EncodeSKUEvent, domain.EncodeSKUEvent)
			}
		}
	})
}

// sameAnswer decodes data as typ at version v with the store's codec and
// the domain's: the same event or both an error; and the event encodes to
// the same bytes with both.
func sameAnswer[E any](t *testing.T, typ string, v int, data []byte,
	decode, domainDecode func(string, int, []byte) (E, error), encode, domainEncode func(E) (string, []byte, error)) {
	t.Helper()
	got, err := decode(typ, v, data)
	want, wantErr := domainDecode(typ, v, data)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%s v%d %q: the store's codec says %v, the domain's %v", typ, v, data, err, wantErr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s v%d %q:\nthe store's codec %#v\nthe domain's      %#v", typ, v, data, got, want)
	}
	gotType, gotBytes, gotErr := encode(got)
	wantType, wantBytes, wantErr := domainEncode(got)
	if gotType != wantType || !bytes.Equal(gotBytes, wantBytes) || (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%#v encodes as %s %s (%v) in the store, %s %s (%v) in the domain",
			got, gotType, gotBytes, gotErr, wantType, wantBytes, wantErr)
	}
}

func BenchmarkPayloadCodec(b *testing.B) {
	decisions := make([]domain.ReservationDecision, 64)
	for i := range decisions {
		decisions[i] = domain.ReservationDecision{Reserved: &domain.StockReserved{ReservationID: "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:apple",
			OrderID: "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Qty: 1, At: payloadT0}, Told: true}
	}
	for _, e := range []any{payloadPlaced(), domain.OrderConfirmed{SKU: "apple", GrantedAt: payloadT0, At: payloadT0},
		domain.ReservationsDecided{Decisions: decisions[:1], Placed: true, At: payloadT0},
		domain.ReservationsDecided{Decisions: decisions, Placed: true, At: payloadT0}} {
		name := reflect.TypeOf(e).Name()
		if d, ok := e.(domain.ReservationsDecided); ok {
			name += "x" + strconv.Itoa(len(d.Decisions))
		}
		data, _ := json.Marshal(e)
		typ := reflect.TypeOf(e)
		b.Run(name+"/encode/plain", func(b *testing.B) {
			for b.Loop() {
				encodePlain(e)
			}
		})
		b.Run(name+"/encode/encoding_json", func(b *testing.B) {
			for b.Loop() {
				_, _ = json.Marshal(e)
			}
		})
		b.Run(name+"/decode/plain", func(b *testing.B) {
			for b.Loop() {
				readPlainInto(reflect.New(typ).Interface(), data)
			}
		})
		b.Run(name+"/decode/encoding_json", func(b *testing.B) {
			for b.Loop() {
				_ = json.Unmarshal(data, reflect.New(typ).Interface())
			}
		})
	}
}
