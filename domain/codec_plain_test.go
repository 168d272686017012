package domain

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// plainPayloads is one zero value per payload with a hand-written codec,
// to decode into.
func plainPayloads() []any {
	return []any{OrderPlaced{}, OrderConfirmed{}, OrderRejected{}, ReservationsDecided{},
		StockReserved{}, ReservationRefused{}, ReservationReleased{}, ReservationCommitted{}}
}

// decodeBoth decodes data into a fresh value of zero's type twice, with
// the hand-written reader and with encoding/json. plain says whether the
// reader took it; when it did, both values must be the same.
func decodeBoth(t *testing.T, zero any, data []byte) (plain bool, jsonErr error) {
	t.Helper()
	fast := reflect.New(reflect.TypeOf(zero))
	want := reflect.New(reflect.TypeOf(zero))
	jsonErr = json.Unmarshal(data, want.Interface())
	if !decodePlain(fast.Interface(), data) {
		return false, jsonErr
	}
	if jsonErr != nil {
		t.Fatalf("%T %s: read by hand, refused by encoding/json: %v", zero, data, jsonErr)
	}
	if got := fast.Elem().Interface(); !reflect.DeepEqual(got, want.Elem().Interface()) {
		t.Fatalf("%T %s:\nby hand       %#v\nencoding/json %#v", zero, data, got, want.Elem().Interface())
	}
	return true, nil
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
		placedEvent(),
		OrderConfirmed{SKU: "apple", GrantedAt: t0, At: t0.Add(time.Millisecond)},
		OrderRejected{Reason: "insufficient_stock", ShortSKUs: []string{"a", "b"}, Available: &avail, At: t0},
		ReservationsDecided{Decisions: []ReservationDecision{
			{Reserved: &StockReserved{ReservationID: "r1", OrderID: "o1", Qty: 2, At: t0}, Told: true},
			{Refused: &ReservationRefused{ReservationID: "r2", OrderID: "o2", Qty: 9, Available: 1, At: t0}},
			{Released: &ReservationReleased{ReservationID: "r3", Qty: 1, At: t0}},
			{Committed: &ReservationCommitted{ReservationID: "r4", Qty: 1, At: t0}},
			{},
		}, Shard: 3, ThroughSeq: 77, Placed: true, At: t0},
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
		{"placed as stored", OrderPlaced{}, placed, true},
		{"confirmed as stored", OrderConfirmed{}, stored["OrderConfirmed"].(string), true},
		{"rejected as stored", OrderRejected{}, stored["OrderRejected"].(string), true},
		{"decided as stored", ReservationsDecided{}, decided, true},
		{"confirmed, version 1", OrderConfirmed{}, `{"at":"2025-03-14T09:26:53Z"}`, true},
		{"spaces everywhere", OrderPlaced{}, " { \"order_id\" : \"o\" ,\n\"lines\" : [ { \"qty\" : 1 } , {} ] }\t", true},
		{"keys in another order", StockReserved{}, `{"at":"2025-03-14T10:26:53+01:00","qty":-3,"order_id":"o","reservation_id":"r"}`, true},
		{"no lines", OrderPlaced{}, withLines(placed, `[]`), true},
		{"non-ASCII string", OrderPlaced{}, `{"customer_id":"Zoë ☃"}`, true},
		{"-0", Line{}, `{"qty":-0}`, true},
		{"told false", ReservationsDecided{}, `{"decisions":[{"told":false}]}`, true},
		{"null lines", OrderPlaced{}, withLines(placed, `null`), false},
		{"null pointer", ReservationsDecided{}, `{"decisions":[{"reserved":null}]}`, false},
		{"escaped string", OrderPlaced{}, `{"order_id":"o\u0041"}`, false},
		{"invalid UTF-8", OrderPlaced{}, "{\"order_id\":\"o\xff\"}", false},
		{"unknown key", OrderPlaced{}, `{"order_id":"o","gift":true}`, false},
		{"key in another case", OrderPlaced{}, `{"Order_ID":"o"}`, false},
		{"repeated key", ReservationsDecided{}, `{"decisions":[{"reserved":{"qty":1},"reserved":{"order_id":"o"}}]}`, false},
		{"repeated list", OrderPlaced{}, `{"lines":[{"qty":1},{"qty":2}],"lines":[{"sku":"b"}]}`, false},
		{"fraction", Line{}, `{"qty":1.0}`, false},
		{"exponent", Line{}, `{"qty":1e2}`, false},
		{"leading zero", Line{}, `{"qty":01}`, false},
		{"19 digits", Line{}, `{"qty":1234567890123456789}`, false},
		{"negative uint", ReservationsDecided{}, `{"through_seq":-1}`, false},
		{"string for a number", Line{}, `{"qty":"1"}`, false},
		{"not a time", OrderConfirmed{}, `{"at":"yesterday"}`, false},
		{"year 10000", OrderConfirmed{}, `{"at":"10000-01-01T00:00:00Z"}`, false},
		{"trailing garbage", OrderConfirmed{}, `{"at":"2025-03-14T09:26:53Z"}x`, false},
		{"two objects", OrderConfirmed{}, `{}{}`, false},
		{"unclosed", OrderPlaced{}, `{"lines":[{"qty":1}`, false},
		{"trailing comma", OrderPlaced{}, `{"order_id":"o",}`, false},
		{"an array", OrderPlaced{}, `[]`, false},
		{"empty", OrderPlaced{}, ``, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			zero := c.zero
			if _, ok := zero.(Line); ok {
				// A line is read inside a placement.
				zero, c.data = OrderPlaced{}, `{"lines":[`+c.data+`]}`
			}
			plain, _ := decodeBoth(t, zero, []byte(c.data))
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
		{placedEvent(), true},
		{OrderPlaced{}, true}, // nil lines are null
		{OrderPlaced{Lines: []Line{}}, true},
		{OrderPlaced{OrderID: "a<b"}, false},
		{OrderPlaced{CustomerID: "Zoë"}, false},
		{OrderPlaced{Currency: `"`}, false},
		{OrderPlaced{At: t0.In(cet)}, true},
		{OrderPlaced{At: time.Now()}, true}, // monotonic reading, local zone
		{OrderPlaced{At: t0.In(odd)}, false},
		{OrderPlaced{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, false},
		{OrderConfirmed{}, true},
		{OrderConfirmed{SKU: "a"}, true},
		{OrderConfirmed{GrantedAt: t0}, true},
		{OrderRejected{}, true},
		{OrderRejected{ShortSKUs: []string{}, Available: &zero}, true},
		{OrderRejected{ShortSKUs: []string{"a", "b&"}}, false},
		{ReservationsDecided{}, true},
		{ReservationsDecided{Decisions: []ReservationDecision{{}, {Told: true}}, Shard: -1, ThroughSeq: 1 << 63}, true},
		{ReservationsDecided{Decisions: []ReservationDecision{{
			Reserved: &StockReserved{}, Refused: &ReservationRefused{}, Released: &ReservationReleased{},
			Committed: &ReservationCommitted{}, Told: true}}}, true},
		{StockReserved{Qty: -1 << 63}, true},
		{ReservationRefused{Available: 1<<63 - 1}, true},
		{ReservationReleased{ReservationID: "r"}, true},
		{ReservationCommitted{ReservationID: "r\n"}, false},
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
	if _, ok := encodePlain(OrderPaid{}); ok {
		t.Fatal("OrderPaid has no hand-written encoding, yet one was written")
	}
}

// FuzzPlainPayloads decodes arbitrary bytes as each hand-coded payload,
// by hand and with encoding/json: the reader must take only what
// encoding/json reads, and read it the same; and whatever encoding/json
// reads must encode to the same bytes by hand and with encoding/json.
func FuzzPlainPayloads(f *testing.F) {
	for _, e := range []any{placedEvent(), OrderConfirmed{SKU: "a", GrantedAt: t0, At: t0},
		OrderRejected{Reason: "r", ShortSKUs: []string{"a"}, At: t0},
		ReservationsDecided{Decisions: []ReservationDecision{{Reserved: &StockReserved{Qty: 1, At: t0}, Told: true},
			{Released: &ReservationReleased{ReservationID: "r"}}}, Placed: true, At: t0}} {
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, zero := range plainPayloads() {
			decodeBoth(t, zero, data)
			v := reflect.New(reflect.TypeOf(zero))
			if json.Unmarshal(data, v.Interface()) != nil {
				continue
			}
			e := v.Elem().Interface()
			want, wantErr := json.Marshal(e)
			if got, ok := encodePlain(e); ok && (wantErr != nil || !bytes.Equal(got, want)) {
				t.Fatalf("%#v:\nby hand       %s\nencoding/json %s (%v)", e, got, want, wantErr)
			}
		}
	})
}

func BenchmarkPayloadCodec(b *testing.B) {
	decisions := make([]ReservationDecision, 64)
	for i := range decisions {
		decisions[i] = ReservationDecision{Reserved: &StockReserved{ReservationID: "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:apple",
			OrderID: "0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Qty: 1, At: t0}, Told: true}
	}
	for _, e := range []any{placedEvent(), OrderConfirmed{SKU: "apple", GrantedAt: t0, At: t0},
		ReservationsDecided{Decisions: decisions[:1], Placed: true, At: t0},
		ReservationsDecided{Decisions: decisions, Placed: true, At: t0}} {
		name := reflect.TypeOf(e).Name()
		if d, ok := e.(ReservationsDecided); ok {
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
				decodePlain(reflect.New(typ).Interface(), data)
			}
		})
		b.Run(name+"/decode/encoding_json", func(b *testing.B) {
			for b.Loop() {
				_ = json.Unmarshal(data, reflect.New(typ).Interface())
			}
		})
	}
}
