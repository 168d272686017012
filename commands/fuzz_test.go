package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/httpx"
)

// FuzzCommandBodies sends arbitrary bodies, Content-Types and sizes to every
// command through serve, the function each command handler runs (ReadBody,
// Decode, the metadata headers, ProblemFor, WriteProblem), and then through
// the command's own decider on an aggregate in a state that allows it. Only
// the event store is left out, because the store would make one input's
// outcome depend on the inputs before it: the decided events are encoded
// and decoded instead of appended.
//
// Every body is tried as every command's body, so a seed written for one
// command is junk with unknown fields for the others. The outcome must be a
// valid command or a problem with 400, 413, 415 or 422: never a panic and
// never a 5xx.
func FuzzCommandBodies(f *testing.F) {
	cases := fuzzCases(f)
	f.Fuzz(func(t *testing.T, contentType string, body []byte, size uint8) {
		mode := fuzzSizeOf(size)
		sent := body
		switch mode {
		case sizeOverKnown, sizeOverChunked:
			sent = fuzzPad(body, httpx.MaxBody+1)
		case sizeExactMax:
			sent = fuzzPad(body, httpx.MaxBody)
		}
		for _, c := range cases {
			got := c.run(t, contentType, sent, mode == sizeChunked || mode == sizeOverChunked)
			fuzzCheckAnswer(t, c.name, contentType, sent, got)
			if (mode == sizeOverKnown || mode == sizeOverChunked) && got.status != http.StatusUnsupportedMediaType &&
				got.status != http.StatusRequestEntityTooLarge {
				t.Errorf("%s: a body of %d bytes got %d, want 413", c.name, len(sent), got.status)
			}
			if mode == sizeExactMax && len(body) <= httpx.MaxBody {
				// Trailing white space up to the limit changes nothing.
				plain := c.run(t, contentType, body, false)
				if plain.status != got.status || plain.code != got.code {
					t.Errorf("%s: padded to 1 MiB got %d %s, unpadded %d %s", c.name, got.status, got.code, plain.status, plain.code)
				}
			}
		}
	})
}

// fuzzSize is how a fuzz input's body is sent, from its size argument.
// Most values send it as is, so that the 1 MiB variants, which cost a
// thousand times more, stay a small share of the executions.
type fuzzSize uint8

const (
	sizeKnown       fuzzSize = 0   // up to 239: as is, with a Content-Length
	sizeChunked     fuzzSize = 240 // up to 249: as is, without a Content-Length
	sizeOverKnown   fuzzSize = 250 // and 251: padded to 1 MiB + 1, with a Content-Length
	sizeOverChunked fuzzSize = 252 // and 253: padded to 1 MiB + 1, without one
	sizeExactMax    fuzzSize = 254 // and 255: padded with white space to exactly 1 MiB
)

func fuzzSizeOf(b uint8) fuzzSize {
	for _, m := range []fuzzSize{sizeExactMax, sizeOverChunked, sizeOverKnown, sizeChunked} {
		if fuzzSize(b) >= m {
			return m
		}
	}
	return sizeKnown
}

// fuzzPad appends spaces to body up to n bytes.
func fuzzPad(body []byte, n int) []byte {
	if len(body) >= n {
		return body
	}
	out := make([]byte, n)
	copy(out, body)
	for i := len(body); i < n; i++ {
		out[i] = ' '
	}
	return out
}

// fuzzAnswer is what one command answered.
type fuzzAnswer struct {
	status int
	code   string
	header http.Header
	body   []byte
}

// fuzzCase runs one command's handler path on a body.
type fuzzCase struct {
	name string
	run  func(t *testing.T, contentType string, body []byte, chunked bool) fuzzAnswer
}

var fuzzNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

const fuzzOrderID = "0190a6b2-7c1e-7000-8000-000000000001"

// fuzzCases lists every command with a body: the state it is decided
// on is one where the command is allowed, so that what fails is the body.
func fuzzCases(tb testing.TB) []fuzzCase {
	tb.Helper()
	pending := fuzzOrderThrough(tb, domain.Order{}, domain.PlaceOrder{OrderID: fuzzOrderID, CustomerID: "c1", Currency: "USD",
		Lines: []domain.Line{{SKU: "gear", Qty: 2, UnitPriceCents: 1250}}, At: fuzzNow})
	confirmed := fuzzOrderThrough(tb, pending, domain.ConfirmOrder{At: fuzzNow})
	paid := fuzzOrderThrough(tb, confirmed, domain.PayOrder{AmountCents: confirmed.TotalCents, PaymentRef: "pay-1", At: fuzzNow})
	shipped := fuzzOrderThrough(tb, paid, domain.ShipOrder{Carrier: "DHL", TrackingNumber: "JD0001", At: fuzzNow})
	delivered := fuzzOrderThrough(tb, shipped, domain.DeliverOrder{At: fuzzNow})
	events, err := domain.DecideSKU(domain.SKU{}, domain.SetOnHand{SKU: "gear", OnHand: 10, At: fuzzNow})
	if err != nil {
		tb.Fatalf("set on hand: %v", err)
	}
	gear := domain.EvolveSKU(domain.SKU{}, events[0])

	// PlaceOrder, SetOnHand and Restock build their domain command inline
	// in the App method; these mirror those lines.
	place := func(a *App, c PlaceOrder) domain.OrderCommand {
		return domain.PlaceOrder{OrderID: a.NewID(), CustomerID: c.CustomerID, Currency: c.Currency, Lines: c.Lines, At: a.Now()}
	}
	setOnHand := func(a *App, sku string, c SetOnHand) domain.SKUCommand {
		return domain.SetOnHand{SKU: sku, OnHand: c.OnHand, At: a.Now()}
	}
	restock := func(a *App, sku string, c Restock) domain.SKUCommand {
		return domain.Restock{SKU: sku, Qty: c.Qty, At: a.Now()}
	}
	return []fuzzCase{
		fuzzOrderCase("PlaceOrder", domain.Order{}, place),
		fuzzOrderCase("PayOrder", confirmed, payCommand),
		fuzzOrderCase("ShipOrder", paid, shipCommand),
		fuzzOrderCase("DeliverOrder", shipped, deliverCommand),
		fuzzOrderCase("CancelOrder", paid, cancelCommand),
		fuzzOrderCase("RefundOrder", delivered, refundCommand),
		fuzzOrderCase("ReturnOrder", delivered, returnCommand),
		fuzzSKUCase("SetOnHand", domain.SKU{}, setOnHand),
		fuzzSKUCase("SetOnHand on an existing SKU", gear, setOnHand),
		fuzzSKUCase("Restock", gear, restock),
	}
}

func fuzzOrderThrough(tb testing.TB, s domain.Order, c domain.OrderCommand) domain.Order {
	tb.Helper()
	events, err := domain.DecideOrder(s, c)
	if err != nil || len(events) == 0 {
		tb.Fatalf("%T: %v", c, err)
	}
	for _, e := range events {
		s = domain.EvolveOrder(s, e)
	}
	return s
}

func fuzzOrderCase[Req any](name string, s domain.Order, toCmd func(*App, Req) domain.OrderCommand) fuzzCase {
	return fuzzDecidedCase(name, func(t *testing.T, a *App, req Req) error {
		events, err := domain.DecideOrder(s, toCmd(a, req))
		if err != nil {
			return err
		}
		if len(events) == 0 {
			t.Errorf("%s: accepted without an event", name)
		}
		for _, e := range events {
			typ, data, err := domain.EncodeOrderEvent(e)
			if err != nil {
				t.Fatalf("%s: encode %T: %v", name, e, err)
			}
			back, err := domain.DecodeOrderEvent(typ, domain.SchemaVersionOf(typ), data)
			if err != nil || !reflect.DeepEqual(back, e) {
				t.Fatalf("%s: %s does not survive the codec: %#v, %v\nwant %#v", name, typ, back, err, e)
			}
			domain.EvolveOrder(s, e)
		}
		return nil
	})
}

func fuzzSKUCase[Req any](name string, s domain.SKU, toCmd func(*App, string, Req) domain.SKUCommand) fuzzCase {
	return fuzzDecidedCase(name, func(t *testing.T, a *App, req Req) error {
		events, err := domain.DecideSKU(s, toCmd(a, "gear", req))
		if err != nil {
			return err
		}
		if len(events) == 0 {
			t.Errorf("%s: accepted without an event", name)
		}
		for _, e := range events {
			typ, data, err := domain.EncodeSKUEvent(e)
			if err != nil {
				t.Fatalf("%s: encode %T: %v", name, e, err)
			}
			back, err := domain.DecodeSKUEvent(typ, domain.SchemaVersionOf(typ), data)
			if err != nil || !reflect.DeepEqual(back, e) {
				t.Fatalf("%s: %s does not survive the codec: %#v, %v\nwant %#v", name, typ, back, err, e)
			}
			domain.EvolveSKU(s, e)
		}
		return nil
	})
}

// fuzzDecidedCase serves a request whose decoded body decide judges; an
// accepted body must also decode again, unchanged, from its own encoding.
func fuzzDecidedCase[Req any](name string, decide func(*testing.T, *App, Req) error) fuzzCase {
	return fuzzCase{name: name, run: func(t *testing.T, contentType string, body []byte, chunked bool) fuzzAnswer {
		a := &App{
			Now:   func() time.Time { return fuzzNow },
			NewID: func() string { return fuzzOrderID },
			Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		r := httptest.NewRequest(http.MethodPost, "/fuzz", bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if chunked {
			r.ContentLength = -1
		}
		w := httptest.NewRecorder()
		serve(a, w, r, func(_ context.Context, _ Meta, req Req) (Result[Req, struct{}], error) {
			if err := decide(t, a, req); err != nil {
				return Result[Req, struct{}]{}, err
			}
			again, err := json.Marshal(req)
			if err != nil {
				t.Fatalf("%s: encode the request: %v", name, err)
			}
			back, err := httpx.Decode[Req](again)
			if err != nil || !reflect.DeepEqual(back, req) {
				t.Errorf("%s: %s decodes to %#v, %v; want %#v", name, again, back, err, req)
			}
			return Result[Req, struct{}]{State: req}, nil
		}, func(_ http.Header, res Result[Req, struct{}]) (int, any) { return http.StatusOK, res.State })
		return fuzzAnswer{status: w.Code, code: fuzzProblemCode(w), header: w.Header(), body: w.Body.Bytes()}
	}}
}

func fuzzProblemCode(w *httptest.ResponseRecorder) string {
	var p struct{ Code string }
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	return p.Code
}

// fuzzMaxProblem bounds a problem document: the largest legitimate one names
// three fields of each of 100 order lines.
const fuzzMaxProblem = 64 << 10

// fuzzCheckAnswer asserts what API.md promises about a command's answer to
// any body: a success only for a JSON object in UTF-8 sent as
// application/json, otherwise a problem+json with a 4xx status and a code.
func fuzzCheckAnswer(t *testing.T, name, contentType string, body []byte, got fuzzAnswer) {
	t.Helper()
	if got.status == http.StatusOK {
		if !fuzzJSONMediaType(contentType) {
			t.Errorf("%s: accepted a body sent as %q", name, contentType)
		}
		if !json.Valid(body) || !utf8.Valid(body) {
			t.Errorf("%s: accepted a body that is not JSON in UTF-8: %q", name, body)
		}
		if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
			t.Errorf("%s: accepted a body that is not a JSON object: %q", name, body)
		}
		if fuzzHasNull(body) {
			// null would silently mean 0 or "", and a null list of lines
			// is refused by validation.
			t.Errorf("%s: accepted a body with a null: %q", name, body)
		}
		return
	}
	switch got.status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
	default:
		t.Fatalf("%s: status %d for body %q: %s", name, got.status, body, got.body)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: a problem sent as %q", name, ct)
	}
	if len(got.body) > fuzzMaxProblem {
		t.Errorf("%s: a problem of %d bytes", name, len(got.body))
	}
	var p httpx.Problem
	dec := json.NewDecoder(bytes.NewReader(got.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s: the problem is not a problem document: %v: %s", name, err, got.body)
	}
	if p.Status != got.status || p.Code == "" || p.Type == "" || p.Title == "" {
		t.Errorf("%s: status %d with problem %+v", name, got.status, p)
	}
	if p.Status == http.StatusUnprocessableEntity && len(p.Errors) == 0 {
		t.Errorf("%s: a 422 that names no field: %+v", name, p)
	}
	if (p.Status == http.StatusUnsupportedMediaType) == fuzzJSONMediaType(contentType) {
		t.Errorf("%s: status %d for Content-Type %q", name, p.Status, contentType)
	}
	if p.Status == http.StatusRequestEntityTooLarge && len(body) <= httpx.MaxBody {
		t.Errorf("%s: 413 for a body of %d bytes", name, len(body))
	}
}

// fuzzHasNull reports whether the JSON in body holds a null anywhere.
func fuzzHasNull(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if tok == nil {
			return true
		}
	}
}

// fuzzJSONMediaType is API.md's "application/json", with an optional UTF-8
// charset.
func fuzzJSONMediaType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || cs == "" || strings.EqualFold(cs, "utf-8")
}
