package main

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/queries"
)

// TestAuthorization walks every command route with every role of API.md,
// without a token, with malformed headers and with an unknown token.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	order := e.placeOrder(t, tokClient)
	e.setOnHand(t, "widget", 10)

	orderRoles := []string{tokClient, tokAdmin}
	adminOnly := []string{tokAdmin}
	routes := []struct {
		name, method, path, body string
		allowed                  []string
	}{
		{"place an order", http.MethodPost, "/v1/orders", string(jsonBody(t, validOrder())), orderRoles},
		{"pay an order", http.MethodPost, ordersPath(order.OrderID, "payment"), `{"amount_cents":3300,"payment_ref":"p-1"}`, orderRoles},
		{"ship an order", http.MethodPost, ordersPath(order.OrderID, "shipment"), `{"carrier":"DHL","tracking_number":"T1"}`, orderRoles},
		{"deliver an order", http.MethodPost, ordersPath(order.OrderID, "delivery"), `{}`, orderRoles},
		{"cancel an order", http.MethodPost, ordersPath(order.OrderID, "cancellation"), `{"reason":"changed my mind"}`, orderRoles},
		{"set on-hand", http.MethodPut, "/v1/inventory/widget", `{"on_hand":5}`, adminOnly},
		{"restock", http.MethodPost, "/v1/inventory/widget/restock", `{"qty":1}`, adminOnly},
	}
	callers := []struct {
		name, auth, token string
	}{
		{name: "no token"},
		{name: "Basic credentials", auth: "Basic dG9rLWFkbWluOg=="},
		{name: "Bearer without token", auth: "Bearer"},
		{name: "token without scheme", auth: tokAdmin},
		{name: "unknown token", auth: "Bearer tok-nobody"},
		{name: "client", token: tokClient},
		{name: "viewer", token: tokViewer},
		{name: "auditor", token: tokAuditor},
		{name: "admin", token: tokAdmin},
	}
	// Sequential: each refusal checks that the whole stream is unchanged.
	for _, rt := range routes {
		for _, c := range callers {
			req := apiCall{method: rt.method, path: rt.path, auth: c.auth, token: c.token, body: []byte(rt.body)}
			switch {
			case c.token == "":
				t.Run(c.name+" is unauthorized to "+rt.name, func(t *testing.T) {
					e.refuse(t, req, http.StatusUnauthorized, "unauthorized")
				})
			case !slices.Contains(rt.allowed, c.token):
				t.Run(c.name+" is forbidden to "+rt.name, func(t *testing.T) {
					e.refuse(t, req, http.StatusForbidden, "forbidden")
				})
			default:
				t.Run(c.name+" may "+rt.name, func(t *testing.T) {
					r := e.do(t, req)
					if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
						t.Errorf("got %s, want the request let through", r)
					}
				})
			}
		}
	}
	t.Run("401 carries WWW-Authenticate", func(t *testing.T) {
		r := e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", auth: "Bearer tok-nobody", body: []byte(`{}`)})
		wantProblem(t, r, http.StatusUnauthorized, "unauthorized")
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
		}
	})
	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run(path+" needs no token", func(t *testing.T) {
			wantStatus(t, e.do(t, apiCall{method: http.MethodGet, path: path}), http.StatusOK)
		})
	}
}

// TestPlaceOrderValidation checks every limit of API.md at and past its
// boundary; a refused order stores nothing.
func TestPlaceOrderValidation(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	long := func(n int) string { return "a" + strings.Repeat("b", n-1) }
	cases := []struct {
		name   string
		mutate func(*commands.PlaceOrder)
		field  string // "" when the order is valid
	}{
		{"customer_id with a subject wildcard", func(o *commands.PlaceOrder) { o.CustomerID = "A.>" }, "customer_id"},
		{"customer_id with a space", func(o *commands.PlaceOrder) { o.CustomerID = "a b" }, "customer_id"},
		{"customer_id star", func(o *commands.PlaceOrder) { o.CustomerID = "*" }, "customer_id"},
		{"customer_id empty", func(o *commands.PlaceOrder) { o.CustomerID = "" }, "customer_id"},
		{"customer_id leading dash", func(o *commands.PlaceOrder) { o.CustomerID = "-abc" }, "customer_id"},
		{"customer_id non-ASCII", func(o *commands.PlaceOrder) { o.CustomerID = "café" }, "customer_id"},
		{"customer_id of 64 chars", func(o *commands.PlaceOrder) { o.CustomerID = long(64) }, ""},
		{"customer_id of 65 chars", func(o *commands.PlaceOrder) { o.CustomerID = long(65) }, "customer_id"},
		{"customer_id of 1 char", func(o *commands.PlaceOrder) { o.CustomerID = "Z" }, ""},
		{"currency lower case", func(o *commands.PlaceOrder) { o.Currency = "usd" }, "currency"},
		{"currency of 2 letters", func(o *commands.PlaceOrder) { o.Currency = "US" }, "currency"},
		{"currency of 4 letters", func(o *commands.PlaceOrder) { o.Currency = "USDX" }, "currency"},
		{"currency empty", func(o *commands.PlaceOrder) { o.Currency = "" }, "currency"},
		{"currency USD", func(o *commands.PlaceOrder) { o.Currency = "USD" }, ""},
		{"no lines", func(o *commands.PlaceOrder) { o.Lines = nil }, "lines"},
		{"empty lines", func(o *commands.PlaceOrder) { o.Lines = []domain.Line{} }, "lines"},
		{"1 line", func(o *commands.PlaceOrder) { o.Lines = testLines(1, 1, 1) }, ""},
		{"100 lines at every maximum", func(o *commands.PlaceOrder) {
			o.Lines = testLines(domain.MaxLines, domain.MaxQty, domain.MaxUnitPriceCents)
		}, ""},
		{"101 lines", func(o *commands.PlaceOrder) { o.Lines = testLines(101, 1, 1) }, "lines"},
		{"sku with a subject wildcard", func(o *commands.PlaceOrder) { o.Lines[0].SKU = "A.>" }, "lines[0].sku"},
		{"sku with a space", func(o *commands.PlaceOrder) { o.Lines[0].SKU = "a b" }, "lines[0].sku"},
		{"sku star", func(o *commands.PlaceOrder) { o.Lines[0].SKU = "*" }, "lines[0].sku"},
		{"sku empty", func(o *commands.PlaceOrder) { o.Lines[0].SKU = "" }, "lines[0].sku"},
		{"sku leading underscore", func(o *commands.PlaceOrder) { o.Lines[1].SKU = "_x" }, "lines[1].sku"},
		{"sku of 64 chars", func(o *commands.PlaceOrder) { o.Lines[0].SKU = long(64) }, ""},
		{"sku of 65 chars", func(o *commands.PlaceOrder) { o.Lines[1].SKU = long(65) }, "lines[1].sku"},
		{"duplicate sku", func(o *commands.PlaceOrder) { o.Lines[1].SKU = o.Lines[0].SKU }, "lines[1].sku"},
		{"qty 0", func(o *commands.PlaceOrder) { o.Lines[0].Qty = 0 }, "lines[0].qty"},
		{"qty negative", func(o *commands.PlaceOrder) { o.Lines[0].Qty = -1 }, "lines[0].qty"},
		{"qty 1", func(o *commands.PlaceOrder) { o.Lines[0].Qty = 1 }, ""},
		{"qty 10000", func(o *commands.PlaceOrder) { o.Lines[0].Qty = 10000 }, ""},
		{"qty 10001", func(o *commands.PlaceOrder) { o.Lines[1].Qty = 10001 }, "lines[1].qty"},
		{"unit_price_cents -1", func(o *commands.PlaceOrder) { o.Lines[0].UnitPriceCents = -1 }, "lines[0].unit_price_cents"},
		{"unit_price_cents 0", func(o *commands.PlaceOrder) { o.Lines[0].UnitPriceCents = 0 }, ""},
		{"unit_price_cents 100000000", func(o *commands.PlaceOrder) { o.Lines[0].UnitPriceCents = 100_000_000 }, ""},
		{"unit_price_cents 100000001", func(o *commands.PlaceOrder) { o.Lines[1].UnitPriceCents = 100_000_001 }, "lines[1].unit_price_cents"},
	}
	// Sequential: each case checks the whole stream.
	for _, tc := range cases {
		o := validOrder()
		tc.mutate(&o)
		req := apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, o)}
		if tc.field == "" {
			t.Run(tc.name+" is accepted", func(t *testing.T) {
				before := e.subjectMsgs(t, "orders.*")
				r := e.do(t, req)
				wantStatus(t, r, http.StatusAccepted)
				v := decodeBody[queries.OrderView](t, r)
				var total int64
				for _, l := range o.Lines {
					total += l.Qty * l.UnitPriceCents
				}
				if v.TotalCents != total || v.CustomerID != o.CustomerID || len(v.Lines) != len(o.Lines) {
					t.Errorf("order %+v does not match the request (total %d)", v, total)
				}
				if after := e.subjectMsgs(t, "orders.*"); after != before+1 {
					t.Errorf("orders.* holds %d events, want %d", after, before+1)
				}
			})
			continue
		}
		t.Run(tc.name+" is refused", func(t *testing.T) {
			p := e.refuse(t, req, http.StatusUnprocessableEntity, "validation_failed")
			wantFieldError(t, p, tc.field)
		})
	}
	t.Run("every bad field is named at once", func(t *testing.T) {
		o := validOrder()
		o.CustomerID, o.Currency, o.Lines[0].Qty, o.Lines[1].UnitPriceCents = "", "usd", 0, -1
		p := e.refuse(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, o)},
			http.StatusUnprocessableEntity, "validation_failed")
		for _, f := range []string{"customer_id", "currency", "lines[0].qty", "lines[1].unit_price_cents"} {
			if _, ok := p.Errors[f]; !ok {
				t.Errorf("errors %v do not name %s", p.Errors, f)
			}
		}
	})
}

// TestOrderCommandValidation checks the fields of payment and shipment.
func TestOrderCommandValidation(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	cases := []struct {
		name   string
		status domain.OrderStatus
		action string
		body   func(total int64) any
		field  string
	}{
		{"payment below the total", domain.StatusConfirmed, "payment", func(total int64) any {
			return commands.PayOrder{AmountCents: total - 1, PaymentRef: "p-1"}
		}, "amount_cents"},
		{"payment above the total", domain.StatusConfirmed, "payment", func(total int64) any {
			return commands.PayOrder{AmountCents: total + 1, PaymentRef: "p-1"}
		}, "amount_cents"},
		{"payment without amount", domain.StatusConfirmed, "payment", func(int64) any {
			return map[string]any{"payment_ref": "p-1"}
		}, "amount_cents"},
		{"payment without payment_ref", domain.StatusConfirmed, "payment", func(total int64) any {
			return map[string]any{"amount_cents": total}
		}, "payment_ref"},
		{"payment with a blank payment_ref", domain.StatusConfirmed, "payment", func(total int64) any {
			return commands.PayOrder{AmountCents: total, PaymentRef: "   "}
		}, "payment_ref"},
		{"payment with a control character in payment_ref", domain.StatusConfirmed, "payment", func(total int64) any {
			return commands.PayOrder{AmountCents: total, PaymentRef: "p\x001"}
		}, "payment_ref"},
		{"shipment without carrier", domain.StatusPaid, "shipment", func(int64) any {
			return map[string]any{"tracking_number": "T1"}
		}, "carrier"},
		{"shipment without tracking_number", domain.StatusPaid, "shipment", func(int64) any {
			return map[string]any{"carrier": "DHL"}
		}, "tracking_number"},
		{"shipment with an empty carrier", domain.StatusPaid, "shipment", func(int64) any {
			return commands.ShipOrder{Carrier: "", TrackingNumber: "T1"}
		}, "carrier"},
		{"cancellation with a control character in reason", domain.StatusPending, "cancellation", func(int64) any {
			return commands.CancelOrder{Reason: "bad\x07reason"}
		}, "reason"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			t.Parallel()
			o := e.orderIn(t, tc.status)
			p := e.refuseOnOrder(t, o.OrderID, apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, tc.action), token: tokClient,
				body: jsonBody(t, tc.body(o.TotalCents))}, http.StatusUnprocessableEntity, "validation_failed")
			wantFieldError(t, p, tc.field)
		})
	}
}

// TestInventoryValidation checks the inventory commands' fields and SKUs.
func TestInventoryValidation(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	e.setOnHand(t, "bolt", 10)
	long := "S" + strings.Repeat("k", 63)
	refused := []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"set on-hand of a wildcard sku", http.MethodPut, "/v1/inventory/A.%3E", `{"on_hand":1}`, 422, "validation_failed", "sku"},
		{"set on-hand of a star sku", http.MethodPut, "/v1/inventory/%2A", `{"on_hand":1}`, 422, "validation_failed", "sku"},
		{"set on-hand of a sku with a space", http.MethodPut, "/v1/inventory/a%20b", `{"on_hand":1}`, 422, "validation_failed", "sku"},
		{"set on-hand of a 65-char sku", http.MethodPut, "/v1/inventory/" + long + "x", `{"on_hand":1}`, 422, "validation_failed", "sku"},
		{"set negative on-hand", http.MethodPut, "/v1/inventory/bolt", `{"on_hand":-1}`, 422, "validation_failed", "on_hand"},
		{"set on-hand above the maximum", http.MethodPut, "/v1/inventory/bolt", fmt.Sprintf(`{"on_hand":%d}`, int64(domain.MaxStock)+1), 422, "validation_failed", "on_hand"},
		{"restock a wildcard sku", http.MethodPost, "/v1/inventory/A.%3E/restock", `{"qty":1}`, 422, "validation_failed", "sku"},
		{"restock of 0", http.MethodPost, "/v1/inventory/bolt/restock", `{"qty":0}`, 422, "validation_failed", "qty"},
		{"restock of -1", http.MethodPost, "/v1/inventory/bolt/restock", `{"qty":-1}`, 422, "validation_failed", "qty"},
		{"restock of a sku never set", http.MethodPost, "/v1/inventory/never-set/restock", `{"qty":1}`, 404, "not_found", ""},
	}
	for _, tc := range refused {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			p := e.refuse(t, apiCall{method: tc.method, path: tc.path, token: tokAdmin, body: []byte(tc.body)}, tc.status, tc.code)
			if tc.field != "" {
				wantFieldError(t, p, tc.field)
			}
		})
	}
	t.Run("set on-hand of a 64-char sku is accepted", func(t *testing.T) {
		if v := e.setOnHand(t, long, 0); v.SKU != long || v.OnHand != 0 || v.Version != 1 {
			t.Errorf("got %+v", v)
		}
	})
	t.Run("set on-hand to the maximum is accepted", func(t *testing.T) {
		if v := e.setOnHand(t, "max", domain.MaxStock); v.OnHand != domain.MaxStock || v.Available != domain.MaxStock {
			t.Errorf("got %+v", v)
		}
	})
	t.Run("restock adds to on-hand", func(t *testing.T) {
		e.setOnHand(t, "nut", 5)
		r := e.do(t, apiCall{method: http.MethodPost, path: "/v1/inventory/nut/restock", token: tokAdmin, body: []byte(`{"qty":7}`)})
		wantStatus(t, r, http.StatusOK)
		v := decodeBody[queries.InventoryView](t, r)
		if v.SKU != "nut" || v.OnHand != 12 || v.Reserved != 0 || v.Available != 12 || v.Version != 2 {
			t.Errorf("got %+v, want nut on_hand 12 at version 2", v)
		}
		if r.header.Get("ETag") != `"2"` {
			t.Errorf("ETag = %q, want \"2\"", r.header.Get("ETag"))
		}
		consistencyToken(t, r)
	})
	t.Run("restock above the maximum is refused", func(t *testing.T) {
		e.setOnHand(t, "full", domain.MaxStock)
		p := e.refuse(t, apiCall{method: http.MethodPost, path: "/v1/inventory/full/restock", token: tokAdmin, body: []byte(`{"qty":1}`)},
			http.StatusUnprocessableEntity, "validation_failed")
		wantFieldError(t, p, "qty")
	})
}

// TestCommandBodies sends every command route bodies that must be refused
// before anything is decided.
func TestCommandBodies(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	order := e.placeOrder(t, tokClient)
	e.setOnHand(t, "gear", 3)

	routes := []struct {
		name, method, path string
		valid, wrongType   string
	}{
		{"place order", http.MethodPost, "/v1/orders", string(jsonBody(t, validOrder())),
			`{"customer_id":"c","currency":"USD","lines":[{"sku":"a","qty":"1","unit_price_cents":1}]}`},
		{"pay", http.MethodPost, ordersPath(order.OrderID, "payment"), `{"amount_cents":3300,"payment_ref":"p"}`,
			`{"amount_cents":"3300","payment_ref":"p"}`},
		{"ship", http.MethodPost, ordersPath(order.OrderID, "shipment"), `{"carrier":"DHL","tracking_number":"T"}`,
			`{"carrier":1,"tracking_number":"T"}`},
		{"deliver", http.MethodPost, ordersPath(order.OrderID, "delivery"), `{}`, `[]`},
		{"cancel", http.MethodPost, ordersPath(order.OrderID, "cancellation"), `{"reason":"r"}`, `{"reason":true}`},
		{"set on-hand", http.MethodPut, "/v1/inventory/gear", `{"on_hand":5}`, `{"on_hand":"5"}`},
		{"restock", http.MethodPost, "/v1/inventory/gear/restock", `{"qty":1}`, `{"qty":1.5}`},
	}
	for _, rt := range routes {
		withField := strings.TrimSuffix(rt.valid, "}")
		if withField != "{" {
			withField += ","
		}
		withField += `"bogus":1}`
		huge := append([]byte(rt.valid), bytes.Repeat([]byte(" "), httpx.MaxBody)...)
		cases := []struct {
			name        string
			body        []byte
			contentType string
			chunked     bool
			status      int
			code        string
		}{
			{"malformed JSON", []byte(`{"a":`), "", false, 400, "malformed_json"},
			{"not JSON at all", []byte(`hello`), "", false, 400, "malformed_json"},
			{"an unknown field", []byte(withField), "", false, 400, "malformed_json"},
			{"a wrong type", []byte(rt.wrongType), "", false, 400, "malformed_json"},
			{"two JSON values", []byte(rt.valid + rt.valid), "", false, 400, "malformed_json"},
			{"an empty body", []byte{}, "", false, 400, "malformed_json"},
			{"text/plain", []byte(rt.valid), "text/plain", false, 415, "unsupported_media_type"},
			{"no Content-Type", []byte(rt.valid), noContentType, false, 415, "unsupported_media_type"},
			{"a latin1 charset", []byte(rt.valid), "application/json; charset=latin1", false, 415, "unsupported_media_type"},
			{"a body over 1 MiB", huge, "", false, 413, "body_too_large"},
			{"a chunked body over 1 MiB", huge, "", true, 413, "body_too_large"},
		}
		for _, tc := range cases {
			t.Run(rt.name+" refuses "+tc.name, func(t *testing.T) {
				e.refuse(t, apiCall{method: rt.method, path: rt.path, token: tokAdmin, body: tc.body,
					contentType: tc.contentType, chunked: tc.chunked}, tc.status, tc.code)
			})
		}
	}
	// encoding/json matches field names case-insensitively, and
	// DisallowUnknownFields does not see "QTY" as unknown.
	caseFolded := []struct{ name, method, path, body string }{
		{"place order refuses field names in another case", http.MethodPost, "/v1/orders",
			`{"Customer_ID":"c1","CURRENCY":"USD","Lines":[{"SKU":"a","QTY":1,"Unit_Price_Cents":1}]}`},
		{"set on-hand refuses a second spelling of on_hand", http.MethodPut, "/v1/inventory/gear",
			`{"on_hand":1,"ON_HAND":2}`},
	}
	for _, tc := range caseFolded {
		t.Run(tc.name, func(t *testing.T) {
			e.refuse(t, apiCall{method: tc.method, path: tc.path, token: tokAdmin, body: []byte(tc.body)}, http.StatusBadRequest, "malformed_json")
		})
	}
	t.Run("a body of exactly 1 MiB is accepted", func(t *testing.T) {
		body := jsonBody(t, validOrder())
		body = append(body, bytes.Repeat([]byte(" "), httpx.MaxBody-len(body))...)
		r := e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: body})
		wantStatus(t, r, http.StatusAccepted)
	})
	t.Run("a utf-8 charset is accepted", func(t *testing.T) {
		r := e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder()),
			contentType: "application/json; charset=UTF-8"})
		wantStatus(t, r, http.StatusAccepted)
	})
}

// TestOrderTransitions drives orders through their life over HTTP.
func TestOrderTransitions(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)

	// Sequential, before the parallel subtests start: they check the whole
	// stream.
	unknown := uuid.Must(uuid.NewV7()).String()
	for _, action := range []string{"payment", "shipment", "delivery", "cancellation"} {
		body := `{}`
		if action == "cancellation" {
			body = `{"reason":"r"}`
		}
		t.Run(action+" of an unknown order is 404", func(t *testing.T) {
			e.refuse(t, apiCall{method: http.MethodPost, path: ordersPath(unknown, action), token: tokClient, body: []byte(body)},
				http.StatusNotFound, "not_found")
		})
		t.Run(action+" of a wildcard order id is 404", func(t *testing.T) {
			e.refuse(t, apiCall{method: http.MethodPost, path: ordersPath("x.%3E", action), token: tokClient, body: []byte(body)},
				http.StatusNotFound, "not_found")
		})
	}
	t.Run("an upper-case order id is 404", func(t *testing.T) {
		o := e.placeOrder(t, tokClient)
		e.refuse(t, apiCall{method: http.MethodPost, path: ordersPath(strings.ToUpper(o.OrderID), "cancellation"), token: tokClient,
			body: []byte(`{}`)}, http.StatusNotFound, "not_found")
	})

	invalid := []struct {
		name   string
		from   domain.OrderStatus
		action string
		body   func(total int64) any
	}{
		{"deliver a pending order", domain.StatusPending, "delivery", func(int64) any { return commands.DeliverOrder{} }},
		{"pay a pending order", domain.StatusPending, "payment", func(total int64) any {
			return commands.PayOrder{AmountCents: total, PaymentRef: "p"}
		}},
		{"ship a confirmed order", domain.StatusConfirmed, "shipment", func(int64) any {
			return commands.ShipOrder{Carrier: "DHL", TrackingNumber: "T"}
		}},
		{"pay a paid order", domain.StatusPaid, "payment", func(total int64) any {
			return commands.PayOrder{AmountCents: total, PaymentRef: "p"}
		}},
		{"deliver a paid order", domain.StatusPaid, "delivery", func(int64) any { return commands.DeliverOrder{} }},
		{"cancel a shipped order", domain.StatusShipped, "cancellation", func(int64) any { return commands.CancelOrder{} }},
		{"cancel a delivered order", domain.StatusDelivered, "cancellation", func(int64) any { return commands.CancelOrder{Reason: "late"} }},
		{"deliver a delivered order", domain.StatusDelivered, "delivery", func(int64) any { return commands.DeliverOrder{} }},
		// The state is checked before the fields: a bad amount on a
		// pending order is still a 409.
		{"pay a pending order the wrong amount", domain.StatusPending, "payment", func(int64) any {
			return commands.PayOrder{AmountCents: 1}
		}},
	}
	for _, tc := range invalid {
		t.Run(tc.name+" is an invalid transition", func(t *testing.T) {
			t.Parallel()
			o := e.orderIn(t, tc.from)
			e.refuseOnOrder(t, o.OrderID, apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, tc.action), token: tokClient,
				body: jsonBody(t, tc.body(o.TotalCents))}, http.StatusConflict, "invalid_transition")
		})
	}
	t.Run("cancel a cancelled order is an invalid transition", func(t *testing.T) {
		t.Parallel()
		o := e.orderIn(t, domain.StatusPending)
		e.orderCommand(t, o.OrderID, "cancellation", commands.CancelOrder{}, domain.StatusCancelled)
		e.refuseOnOrder(t, o.OrderID, apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, "cancellation"), token: tokClient,
			body: []byte(`{}`)}, http.StatusConflict, "invalid_transition")
	})

	t.Run("a confirmed order is paid, shipped and delivered", func(t *testing.T) {
		t.Parallel()
		o := e.orderIn(t, domain.StatusConfirmed)
		steps := []struct {
			action  string
			body    any
			want    domain.OrderStatus
			version uint64
		}{
			{"payment", commands.PayOrder{AmountCents: o.TotalCents, PaymentRef: "pay-42"}, domain.StatusPaid, 3},
			{"shipment", commands.ShipOrder{Carrier: "UPS", TrackingNumber: "1Z999"}, domain.StatusShipped, 4},
			{"delivery", commands.DeliverOrder{}, domain.StatusDelivered, 5},
		}
		var lastToken uint64
		for _, s := range steps {
			r := e.do(t, apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, s.action), token: tokClient, body: jsonBody(t, s.body)})
			wantStatus(t, r, http.StatusOK)
			v := decodeBody[queries.OrderView](t, r)
			if v.OrderID != o.OrderID || v.Status != string(s.want) || v.Version != s.version || v.TotalCents != o.TotalCents {
				t.Errorf("%s: got %+v, want %s at version %d", s.action, v, s.want, s.version)
			}
			if want := fmt.Sprintf(`"%d"`, s.version); r.header.Get("ETag") != want {
				t.Errorf("%s: ETag = %q, want %s", s.action, r.header.Get("ETag"), want)
			}
			if got := r.header.Get("Location"); got != "/v1/orders/"+o.OrderID {
				t.Errorf("%s: Location = %q", s.action, got)
			}
			if tok := consistencyToken(t, r); tok <= lastToken {
				t.Errorf("%s: Consistency-Token %d does not advance past %d", s.action, tok, lastToken)
			} else {
				lastToken = tok
			}
		}
		if n := e.subjectMsgs(t, "orders."+o.OrderID); n != 5 {
			t.Errorf("the order has %d events, want 5", n)
		}
	})
	for _, st := range []domain.OrderStatus{domain.StatusPending, domain.StatusConfirmed} {
		t.Run("cancel a "+string(st)+" order owes no refund", func(t *testing.T) {
			t.Parallel()
			o := e.orderIn(t, st)
			v := e.orderCommand(t, o.OrderID, "cancellation", commands.CancelOrder{Reason: "changed my mind"}, domain.StatusCancelled)
			if v.RefundDueCents != 0 || v.Version != o.Version+1 {
				t.Errorf("got %+v, want no refund at version %d", v, o.Version+1)
			}
		})
	}
	t.Run("cancel a paid order owes a refund of the total", func(t *testing.T) {
		t.Parallel()
		o := e.orderIn(t, domain.StatusPaid)
		v := e.orderCommand(t, o.OrderID, "cancellation", commands.CancelOrder{Reason: "out of stock"}, domain.StatusCancelled)
		if v.RefundDueCents != validOrderTotal || v.RefundDueCents != v.TotalCents || v.Version != 4 {
			t.Errorf("got %+v, want refund_due_cents %d at version 4", v, validOrderTotal)
		}
	})
}

// TestIfMatch checks optimistic concurrency for clients.
func TestIfMatch(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	for _, im := range []string{`"1"`, `W/"1"`} {
		t.Run("If-Match "+im+" on a pending order at version 1 is allowed", func(t *testing.T) {
			t.Parallel()
			o := e.placeOrder(t, tokClient)
			r := e.do(t, apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, "cancellation"), token: tokClient,
				body: []byte(`{}`), header: map[string]string{"If-Match": im}})
			wantStatus(t, r, http.StatusOK)
			if v := decodeBody[queries.OrderView](t, r); v.Status != string(domain.StatusCancelled) || v.Version != 2 {
				t.Errorf("got %+v, want cancelled at version 2", v)
			}
		})
	}
	t.Run("a stale If-Match is a failed precondition", func(t *testing.T) {
		t.Parallel()
		o := e.orderIn(t, domain.StatusConfirmed)
		pay := jsonBody(t, commands.PayOrder{AmountCents: o.TotalCents, PaymentRef: "p"})
		e.refuseOnOrder(t, o.OrderID, apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, "payment"), token: tokClient,
			body: pay, header: map[string]string{"If-Match": `"1"`}}, http.StatusPreconditionFailed, "precondition_failed")
		r := e.do(t, apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, "payment"), token: tokClient,
			body: pay, header: map[string]string{"If-Match": `"2"`}})
		wantStatus(t, r, http.StatusOK)
	})
	t.Run("an If-Match ahead of the order is a failed precondition", func(t *testing.T) {
		t.Parallel()
		o := e.placeOrder(t, tokClient)
		e.refuseOnOrder(t, o.OrderID, apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, "cancellation"), token: tokClient,
			body: []byte(`{}`), header: map[string]string{"If-Match": `"9"`}}, http.StatusPreconditionFailed, "precondition_failed")
	})
	t.Run("a malformed If-Match is a bad request", func(t *testing.T) {
		t.Parallel()
		o := e.placeOrder(t, tokClient)
		e.refuseOnOrder(t, o.OrderID, apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, "cancellation"), token: tokClient,
			body: []byte(`{}`), header: map[string]string{"If-Match": "garbage"}}, http.StatusBadRequest, "invalid_if_match")
	})
}

// TestIdempotency checks Idempotency-Key: replay, reuse, races, scopes and
// malformed keys. Sequential: the subtests count the whole stream.
func TestIdempotency(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	place := func(token, key string, o commands.PlaceOrder) apiCall {
		return apiCall{method: http.MethodPost, path: "/v1/orders", token: token, body: jsonBody(t, o),
			header: map[string]string{"Idempotency-Key": key}}
	}

	t.Run("the same key and body replays the first response", func(t *testing.T) {
		before := e.subjectMsgs(t, "orders.*")
		first := e.do(t, place(tokClient, "replay-1", validOrder()))
		wantStatus(t, first, http.StatusAccepted)
		if first.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("a first response says Idempotent-Replayed: %q", first.header.Get("Idempotent-Replayed"))
		}
		mid := e.streamState(t)
		second := e.do(t, place(tokClient, "replay-1", validOrder()))
		if second.status != first.status || !bytes.Equal(second.body, first.body) {
			t.Errorf("replay %s differs from the first response %s", second, first)
		}
		if got := second.header.Get("Idempotent-Replayed"); got != "true" {
			t.Errorf("Idempotent-Replayed = %q, want true", got)
		}
		for _, h := range []string{"Location", "ETag", "Consistency-Token"} {
			if second.header.Get(h) != first.header.Get(h) {
				t.Errorf("replayed %s = %q, first was %q", h, second.header.Get(h), first.header.Get(h))
			}
		}
		if after := e.streamState(t); after != mid {
			t.Errorf("a replay changed the stream: %+v, was %+v", after, mid)
		}
		if after := e.subjectMsgs(t, "orders.*"); after != before+1 {
			t.Errorf("orders.* grew by %d events, want 1", after-before)
		}
	})
	t.Run("the same key replays an order command", func(t *testing.T) {
		o := e.orderIn(t, domain.StatusConfirmed)
		pay := apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, "payment"), token: tokClient,
			body:   jsonBody(t, commands.PayOrder{AmountCents: o.TotalCents, PaymentRef: "p"}),
			header: map[string]string{"Idempotency-Key": "pay-" + o.OrderID}}
		first := e.do(t, pay)
		wantStatus(t, first, http.StatusOK)
		mid := e.streamState(t)
		second := e.do(t, pay)
		if second.status != http.StatusOK || !bytes.Equal(second.body, first.body) || second.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay %s (replayed %q) differs from the first response %s", second, second.header.Get("Idempotent-Replayed"), first)
		}
		if after := e.streamState(t); after != mid {
			t.Errorf("a replay changed the stream: %+v, was %+v", after, mid)
		}
	})
	t.Run("a replay after the aggregate moved on answers as the first time", func(t *testing.T) {
		o := e.orderIn(t, domain.StatusConfirmed)
		pay := apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, "payment"), token: tokClient,
			body:   jsonBody(t, commands.PayOrder{AmountCents: o.TotalCents, PaymentRef: "p"}),
			header: map[string]string{"Idempotency-Key": "pay-later-" + o.OrderID}}
		first := e.do(t, pay)
		wantStatus(t, first, http.StatusOK)
		wantStatus(t, e.do(t, apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, "shipment"), token: tokClient,
			body: []byte(`{"carrier":"DHL","tracking_number":"T1"}`)}), http.StatusOK)
		put := apiCall{method: http.MethodPut, path: "/v1/inventory/replay-later", token: tokAdmin,
			body: jsonBody(t, commands.SetOnHand{OnHand: 7}), header: map[string]string{"Idempotency-Key": "stock-later"}}
		firstPut := e.do(t, put)
		wantStatus(t, firstPut, http.StatusOK)
		wantStatus(t, e.do(t, apiCall{method: http.MethodPost, path: "/v1/inventory/replay-later/restock", token: tokAdmin,
			body: []byte(`{"qty":1}`)}), http.StatusOK)
		for _, c := range []struct{ call, first apiResponse }{{e.do(t, pay), first}, {e.do(t, put), firstPut}} {
			if c.call.status != c.first.status || !bytes.Equal(c.call.body, c.first.body) || c.call.header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("replay %s (replayed %q) differs from the first response %s", c.call, c.call.header.Get("Idempotent-Replayed"), c.first)
			}
			for _, h := range []string{"Location", "ETag", "Consistency-Token"} {
				if c.call.header.Get(h) != c.first.header.Get(h) {
					t.Errorf("replayed %s = %q, first was %q", h, c.call.header.Get(h), c.first.header.Get(h))
				}
			}
		}
	})
	t.Run("the same key with another body is refused", func(t *testing.T) {
		wantStatus(t, e.do(t, place(tokClient, "reuse-1", validOrder())), http.StatusAccepted)
		other := validOrder()
		other.Lines[0].Qty++
		e.refuse(t, place(tokClient, "reuse-1", other), http.StatusUnprocessableEntity, "idempotency_key_reused")
	})
	t.Run("a key names one request to one resource", func(t *testing.T) {
		// Keys are scoped to the caller and the resource (method and path):
		// the same key sent to another resource is another request, as the
		// IETF Idempotency-Key draft scopes it (docs/design/write-path.md).
		o := e.placeOrder(t, tokClient)
		body := jsonBody(t, validOrder())
		wantStatus(t, e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: body,
			header: map[string]string{"Idempotency-Key": "route-1"}}), http.StatusAccepted)
		cancel := apiCall{method: http.MethodPost, path: ordersPath(o.OrderID, "cancellation"), token: tokClient, body: []byte(`{}`),
			header: map[string]string{"Idempotency-Key": "route-1"}}
		first := e.do(t, cancel)
		wantStatus(t, first, http.StatusOK)
		if first.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("the key of an order's creation was replayed on its cancellation")
		}
		if again := e.do(t, cancel); again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, first.body) {
			t.Errorf("the cancellation's retry %s (replayed %q) differs from its first answer %s", again, again.header.Get("Idempotent-Replayed"), first)
		}
		other := validOrder()
		other.CustomerID = "someone-else"
		e.refuse(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, other),
			header: map[string]string{"Idempotency-Key": "route-1"}}, http.StatusUnprocessableEntity, "idempotency_key_reused")
	})
	t.Run("a keyed order stores no idempotency record", func(t *testing.T) {
		before := e.subjectMsgs(t, "idem.*")
		wantStatus(t, e.do(t, place(tokClient, "no-record-1", validOrder())), http.StatusAccepted)
		if after := e.subjectMsgs(t, "idem.*"); after != before {
			t.Errorf("idem.* grew by %d messages for a keyed order, want 0", after-before)
		}
	})
	t.Run("concurrent requests with one key place one order", func(t *testing.T) {
		raceOneKey(t, []*apiEnv{e}, place(tokClient, "race-1", validOrder()))
	})
	t.Run("concurrent requests with one key on two engines place one order", func(t *testing.T) {
		// Each engine has its own in-flight set: only the store can tell
		// the twins apart.
		raceOneKey(t, []*apiEnv{e, e.secondEngine(t)}, place(tokClient, "race-2", validOrder()))
	})
	t.Run("one key used by two callers places two orders", func(t *testing.T) {
		before := e.subjectMsgs(t, "orders.*")
		a := e.do(t, place(tokClient, "shared-1", validOrder()))
		b := e.do(t, place(tokAdmin, "shared-1", validOrder()))
		wantStatus(t, a, http.StatusAccepted)
		wantStatus(t, b, http.StatusAccepted)
		if b.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("another caller's key was replayed")
		}
		ida, idb := decodeBody[queries.OrderView](t, a).OrderID, decodeBody[queries.OrderView](t, b).OrderID
		if ida == idb {
			t.Errorf("both callers got order %s", ida)
		}
		if after := e.subjectMsgs(t, "orders.*"); after != before+2 {
			t.Errorf("orders.* grew by %d events, want 2", after-before)
		}
	})
	invalid := []struct{ name, key string }{
		{"a key of 256 characters", strings.Repeat("k", 256)},
		{"a key with a tab", "key\twith-tab"},
		{"a non-ASCII key", "clé"},
		{"an empty key", ""},
	}
	for _, tc := range invalid {
		t.Run(tc.name+" is a bad request", func(t *testing.T) {
			e.refuse(t, place(tokClient, tc.key, validOrder()), http.StatusBadRequest, "invalid_idempotency_key")
		})
	}
	for _, key := range []string{"k", strings.Repeat("k", 255), "~!@#$%^&*()_+ {}|:<>?"} {
		t.Run(fmt.Sprintf("a key of %d printable characters is accepted", len(key)), func(t *testing.T) {
			wantStatus(t, e.do(t, place(tokClient, key, validOrder())), http.StatusAccepted)
		})
	}
}

// TestPlaceOrderResponse checks the shape of a 202 answer.
func TestPlaceOrderResponse(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	o := validOrder()
	r := e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, o)})
	wantStatus(t, r, http.StatusAccepted)
	body := decodeBody[map[string]any](t, r)
	id, _ := body["order_id"].(string)

	t.Run("order_id is a canonical UUID", func(t *testing.T) {
		u, err := uuid.Parse(id)
		if err != nil || u.String() != id {
			t.Errorf("order_id %q is not a canonical lower-case UUID", id)
		}
	})
	t.Run("order ids are time-ordered", func(t *testing.T) {
		next := e.placeOrder(t, tokClient)
		if next.OrderID <= id {
			t.Errorf("order %s placed after %s sorts before it", next.OrderID, id)
		}
	})
	t.Run("body says pending at version 1 with the total", func(t *testing.T) {
		if body["status"] != "pending" || body["version"] != float64(1) || body["total_cents"] != float64(validOrderTotal) {
			t.Errorf("body %v, want status pending, version 1, total_cents %d", body, validOrderTotal)
		}
		if body["customer_id"] != o.CustomerID || body["currency"] != o.Currency {
			t.Errorf("body %v does not echo the customer and currency", body)
		}
	})
	t.Run("Location names the order", func(t *testing.T) {
		if got := r.header.Get("Location"); got != "/v1/orders/"+id {
			t.Errorf("Location = %q, want /v1/orders/%s", got, id)
		}
	})
	t.Run("ETag is the version", func(t *testing.T) {
		if got := r.header.Get("ETag"); got != `"1"` {
			t.Errorf(`ETag = %q, want "1"`, got)
		}
	})
	t.Run("Consistency-Token is a position", func(t *testing.T) {
		if tok := consistencyToken(t, r); tok == 0 {
			t.Errorf("Consistency-Token is 0")
		}
	})
}

// raceOneKey sends req 20 times at once, spread over engines (which share
// one nats-server), and checks that exactly one order came of it: every
// answer is that order's 202 or a 409 for the key in flight.
func raceOneKey(t *testing.T, engines []*apiEnv, req apiCall) {
	t.Helper()
	const n = 20
	e := engines[0]
	before := e.subjectMsgs(t, "orders.*")
	start := make(chan struct{})
	responses := make([]apiResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			responses[i] = engines[i%len(engines)].do(t, req)
		})
	}
	close(start)
	wg.Wait()
	orderIDs := map[string]int{}
	for _, r := range responses {
		switch r.status {
		case http.StatusAccepted:
			orderIDs[decodeBody[queries.OrderView](t, r).OrderID]++
		case http.StatusConflict:
			wantProblem(t, r, http.StatusConflict, "idempotency_key_in_flight")
		default:
			t.Errorf("got %s, want 202 or 409", r)
		}
	}
	if len(orderIDs) != 1 {
		t.Errorf("202 answers name %d orders, want 1: %v", len(orderIDs), orderIDs)
	}
	if after := e.subjectMsgs(t, "orders.*"); after != before+1 {
		t.Errorf("orders.* grew by %d events, want exactly 1", after-before)
	}
}

// TestRequestAndCorrelationIDsReachTheEvents: an auditor can follow a
// request end to end, from its X-Request-Id and the caller's
// X-Correlation-Id to the events it stored.
func TestRequestAndCorrelationIDsReachTheEvents(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	r := e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder()),
		header: map[string]string{"X-Correlation-Id": "checkout-42"}})
	wantStatus(t, r, http.StatusAccepted)
	requestID := r.header.Get("X-Request-Id")
	if requestID == "" {
		t.Fatal("no X-Request-Id in the answer")
	}
	order := decodeBody[queries.OrderView](t, r)
	events := decodeBody[struct {
		Events []queries.AuditEvent `json:"events"`
	}](t, e.do(t, apiCall{method: http.MethodGet, path: "/v1/audit/orders/" + order.OrderID + "/events", token: tokAuditor}))
	if len(events.Events) == 0 {
		t.Fatal("no events")
	}
	for _, ev := range events.Events {
		if ev.CausationID != requestID || ev.CorrelationID != "checkout-42" || ev.CommandID == "" {
			t.Errorf("event %s: command %q causation %q correlation %q; want request %q and checkout-42",
				ev.Type, ev.CommandID, ev.CausationID, ev.CorrelationID, requestID)
		}
	}
}

// TestLeftOutFieldsWhoseZeroIsValidAre422: leaving out on_hand must not set
// the stock to 0, nor leaving out a price give a line away; saying 0 is fine.
func TestLeftOutFieldsWhoseZeroIsValidAre422(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	e.setOnHand(t, "widget", 10)
	for name, tc := range map[string]struct {
		call  apiCall
		field string
	}{
		"on_hand left out": {apiCall{method: http.MethodPut, path: "/v1/inventory/widget", token: tokAdmin, body: []byte(`{}`)}, "on_hand"},
		"a price left out": {apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient,
			body: []byte(`{"customer_id":"c1","currency":"USD","lines":[{"sku":"widget","qty":1}]}`)}, "lines[0].unit_price_cents"},
	} {
		t.Run(name, func(t *testing.T) {
			p := e.refuse(t, tc.call, http.StatusUnprocessableEntity, "validation_failed")
			if p.Errors[tc.field] != "is required" {
				t.Errorf("errors %v, want %s is required", p.Errors, tc.field)
			}
		})
	}
	r := e.do(t, apiCall{method: http.MethodPut, path: "/v1/inventory/widget", token: tokAdmin, body: []byte(`{"on_hand":0}`)})
	wantStatus(t, r, http.StatusOK)
}

// TestOversizedOrBadRequestIDsAreReplaced: request and correlation ids stay
// in the events for good, so one over 128 printable ASCII characters (or
// with a control or non-ASCII byte) is replaced by a fresh id, which the
// answer's X-Request-Id names and the events carry; a fitting one is kept.
func TestOversizedOrBadRequestIDsAreReplaced(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	huge := strings.Repeat("r", 300<<10)
	for name, tc := range map[string]struct {
		requestID, correlationID string
		keep                     bool
	}{
		"300 KB ids":            {huge, huge, false},
		"129 characters":        {strings.Repeat("a", 129), strings.Repeat("b", 129), false},
		"a tab and a non-ASCII": {"req\t1", "corr-é", false},
		"128 characters":        {strings.Repeat("a", 128), strings.Repeat("b", 128), true},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder()),
				header: map[string]string{"X-Request-Id": tc.requestID, "X-Correlation-Id": tc.correlationID}})
			wantStatus(t, r, http.StatusAccepted)
			got := r.header.Get("X-Request-Id")
			if tc.keep != (got == tc.requestID) || got == "" || len(got) > 128 {
				t.Fatalf("answer's X-Request-Id %.40q (len %d), want the caller's kept: %v", got, len(got), tc.keep)
			}
			wantCorrelation := got
			if tc.keep {
				wantCorrelation = tc.correlationID
			}
			order := decodeBody[queries.OrderView](t, r)
			events := decodeBody[struct {
				Events []queries.AuditEvent `json:"events"`
			}](t, e.do(t, apiCall{method: http.MethodGet, path: "/v1/audit/orders/" + order.OrderID + "/events", token: tokAuditor}))
			for _, ev := range events.Events {
				if ev.CausationID != got || ev.CorrelationID != wantCorrelation {
					t.Errorf("event %s: causation %.40q correlation %.40q; want %.40q and %.40q",
						ev.Type, ev.CausationID, ev.CorrelationID, got, wantCorrelation)
				}
			}
		})
	}
	// A 600 KB id made every retry of a command fail with 503: its event
	// was over the store's message size.
	r := e.do(t, apiCall{method: http.MethodPost, path: "/v1/orders", token: tokClient, body: jsonBody(t, validOrder()),
		header: map[string]string{"X-Request-Id": strings.Repeat("x", 600<<10), "Idempotency-Key": "big-id"}})
	wantStatus(t, r, http.StatusAccepted)
}

// TestWrongTypesNameTheFieldNotAGoType: a value of the wrong JSON type is a
// 400 naming the field by its path in the body, in JSON's words; nothing of
// the engine's Go types leaks into the answer.
func TestWrongTypesNameTheFieldNotAGoType(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t)
	order := e.placeOrder(t, tokClient)
	line := `{"sku":"a","qty":1,"unit_price_cents":1}`
	for name, tc := range map[string]struct {
		method, path, body string
		field, msg         string
	}{
		"a string qty": {http.MethodPost, "/v1/orders",
			`{"customer_id":"c","currency":"USD","lines":[` + line + `,{"sku":"a","qty":"1","unit_price_cents":1}]}`,
			"lines[1].qty", "must be a JSON number"},
		"a fractional price": {http.MethodPost, "/v1/orders",
			`{"customer_id":"c","currency":"USD","lines":[{"sku":"a","qty":1,"unit_price_cents":1.5}]}`,
			"lines[0].unit_price_cents", "must be a whole number"},
		"lines as an object": {http.MethodPost, "/v1/orders", `{"customer_id":"c","currency":"USD","lines":{}}`,
			"lines", "must be a JSON array"},
		"a numeric customer": {http.MethodPost, "/v1/orders", `{"customer_id":7,"currency":"USD","lines":[` + line + `]}`,
			"customer_id", "must be a JSON string"},
		"a string amount": {http.MethodPost, ordersPath(order.OrderID, "payment"), `{"amount_cents":"3300","payment_ref":"p"}`,
			"amount_cents", "must be a JSON number"},
		"a boolean reason": {http.MethodPost, ordersPath(order.OrderID, "cancellation"), `{"reason":true}`,
			"reason", "must be a JSON string"},
		"on_hand past int64":   {http.MethodPut, "/v1/inventory/gear", `{"on_hand":1e30}`, "on_hand", "must be a whole number"},
		"on_hand of 20 digits": {http.MethodPut, "/v1/inventory/gear", `{"on_hand":99999999999999999999}`, "on_hand", "is out of range"},
		"an array body":        {http.MethodPost, ordersPath(order.OrderID, "delivery"), `[]`, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do(t, apiCall{method: tc.method, path: tc.path, token: tokAdmin, body: []byte(tc.body)})
			p := wantProblem(t, r, http.StatusBadRequest, "malformed_json")
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[tc.field] != tc.msg) {
				t.Errorf("errors %v, want %s: %s", p.Errors, tc.field, tc.msg)
			}
			for _, goWord := range []string{"Go ", "int64", "struct", "commands.", "domain.", "unmarshal"} {
				if bytes.Contains(r.body, []byte(goWord)) {
					t.Errorf("the answer names %q: %s", goWord, r.body)
				}
			}
		})
	}
}
