package queries_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/engine/queries"
)

func TestGetOrder(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := newServer(t, pool)
	id := newID(t)
	// Lines are inserted out of order: the answer must follow line_no.
	insertOrders(t, pool, order{id: id, customer: "cust-7", status: "confirmed", version: 3, created: base, lines: []line{
		{no: 2, sku: "b", qty: 2, price: 50}, {no: 0, sku: "z", qty: 1, price: 100}, {no: 1, sku: "a", qty: 3, price: 7},
	}})
	bare := newID(t)
	insertOrders(t, pool, order{id: bare, created: base})

	t.Run("returns the order with its lines in line_no order and an ETag", func(t *testing.T) {
		rec := get(t, h, "/v1/orders/"+id)
		o := decode[queries.OrderView](t, rec, http.StatusOK)
		if got := rec.Header().Get("ETag"); got != `"3"` {
			t.Errorf("ETag %q, want \"3\"", got)
		}
		want := queries.OrderView{
			OrderID: id, CustomerID: "cust-7", Status: "confirmed", Currency: "USD",
			Lines:      []queries.OrderLineView{{SKU: "z", Qty: 1, UnitPriceCents: 100}, {SKU: "a", Qty: 3, UnitPriceCents: 7}, {SKU: "b", Qty: 2, UnitPriceCents: 50}},
			TotalCents: 221, Version: 3, CreatedAt: base, UpdatedAt: base.Add(time.Minute),
		}
		if fmt.Sprint(o) != fmt.Sprint(want) {
			t.Errorf("got  %+v\nwant %+v", o, want)
		}
		if !strings.Contains(rec.Body.String(), `"created_at":"2026-01-02T03:04:05.123456Z"`) {
			t.Errorf("created_at not in UTC with microseconds: %s", rec.Body)
		}
	})
	t.Run("an order without lines has lines []", func(t *testing.T) {
		rec := get(t, h, "/v1/orders/"+bare)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"lines":[]`) {
			t.Errorf("status %d body %s, want lines []", rec.Code, rec.Body)
		}
	})

	cases := []struct {
		name   string
		path   string
		header []string
		status int
		code   string
		field  string
	}{
		{name: "If-None-Match naming the version is 304", path: "/v1/orders/" + id, header: []string{"If-None-Match", `"3"`}, status: http.StatusNotModified},
		{name: "If-None-Match in a list is 304", path: "/v1/orders/" + id, header: []string{"If-None-Match", `"1", W/"3"`}, status: http.StatusNotModified},
		{name: "If-None-Match * is 304", path: "/v1/orders/" + id, header: []string{"If-None-Match", `*`}, status: http.StatusNotModified},
		{name: "If-None-Match naming an old version is 200", path: "/v1/orders/" + id, header: []string{"If-None-Match", `"2"`}, status: http.StatusOK},
		{name: "unknown id is 404", path: "/v1/orders/" + newID(t), status: http.StatusNotFound, code: "not_found"},
		{name: "upper-case id is 404", path: "/v1/orders/" + strings.ToUpper(id), status: http.StatusNotFound, code: "not_found"},
		{name: "malformed id is 404", path: "/v1/orders/not-a-uuid", status: http.StatusNotFound, code: "not_found"},
		{name: "unknown parameter is 422", path: "/v1/orders/" + id + "?fields=all", status: http.StatusUnprocessableEntity, code: "validation_failed", field: "fields"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, h, tc.path, tc.header...)
			switch {
			case tc.code != "":
				checkProblem(t, rec, tc.status, tc.code, tc.field)
			case rec.Code != tc.status:
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			case tc.status == http.StatusNotModified:
				if rec.Body.Len() != 0 || rec.Header().Get("ETag") != `"3"` {
					t.Errorf("304 with body %q and ETag %q", rec.Body, rec.Header().Get("ETag"))
				}
			}
		})
	}
}

// listAll follows next_cursor from path to the last page and returns the
// order ids in the order they came; between pages it calls between.
func listAll(t *testing.T, h http.Handler, path string, between func(page int)) (ids []string, pages int) {
	t.Helper()
	cursor := ""
	for {
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		l := decode[queries.OrderList](t, get(t, h, p), http.StatusOK)
		pages++
		for _, o := range l.Orders {
			ids = append(ids, o.OrderID)
		}
		if l.NextCursor == "" {
			return ids, pages
		}
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		cursor = l.NextCursor
		if between != nil {
			between(pages)
		}
	}
}

func TestListOrdersPagination(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := newServer(t, pool)

	// 23 orders, newest first in want; every third pair shares created_at
	// so that order_id has to break the tie.
	var fixtures []order
	for i := range 23 {
		fixtures = append(fixtures, order{id: newID(t), created: base.Add(time.Duration(i/2) * time.Second)})
	}
	insertOrders(t, pool, fixtures...)
	slices.SortFunc(fixtures, func(a, b order) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return strings.Compare(b.id, a.id)
	})
	want := make([]string, len(fixtures))
	for i, o := range fixtures {
		want[i] = o.id
	}

	t.Run("every order exactly once while newer ones arrive", func(t *testing.T) {
		var added []string
		ids, pages := listAll(t, h, "/v1/orders?limit=5", func(page int) {
			// Newer orders (and one with the newest created_at tied)
			// land while the client pages.
			n := order{id: newID(t), created: time.Now().UTC().Add(time.Duration(page) * time.Hour)}
			tie := order{id: newID(t), created: fixtures[0].created}
			insertOrders(t, pool, n, tie)
			added = append(added, n.id, tie.id)
		})
		if pages != 5 {
			t.Errorf("%d pages, want 5", pages)
		}
		// Ties inserted during paging may or may not be seen, depending
		// on where the cursor stood; the original orders must all come,
		// once each, newest first.
		var got []string
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("order %s listed twice", id)
			}
			seen[id] = true
			if !slices.Contains(added, id) {
				got = append(got, id)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("got  %v\nwant %v", got, want)
		}
	})
	t.Run("a fresh listing starts with the newest", func(t *testing.T) {
		l := decode[queries.OrderList](t, get(t, h, "/v1/orders?limit=1"), http.StatusOK)
		if len(l.Orders) != 1 || l.Orders[0].CreatedAt.Before(base.Add(time.Hour)) || l.NextCursor == "" {
			t.Errorf("first page %+v, want the newest order added during paging and a cursor", l)
		}
	})
}

func TestListOrdersLimits(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := newServer(t, pool)

	t.Run("an empty list is []", func(t *testing.T) {
		rec := get(t, h, "/v1/orders")
		if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"orders":[]}` {
			t.Errorf("status %d body %s", rec.Code, rec.Body)
		}
	})

	var fixtures []order
	for i := range 205 {
		fixtures = append(fixtures, order{id: newID(t), created: base.Add(time.Duration(i) * time.Millisecond)})
	}
	insertOrders(t, pool, fixtures...)
	cases := []struct {
		query    string
		n        int
		nextPage bool
	}{
		{query: "", n: 50, nextPage: true},
		{query: "?limit=", n: 50, nextPage: true},
		{query: "?limit=1", n: 1, nextPage: true},
		{query: "?limit=200", n: 200, nextPage: true},
		{query: "?status=pending&limit=200", n: 200, nextPage: true},
	}
	for _, tc := range cases {
		t.Run("limit "+tc.query, func(t *testing.T) {
			l := decode[queries.OrderList](t, get(t, h, "/v1/orders"+tc.query), http.StatusOK)
			if len(l.Orders) != tc.n || (l.NextCursor != "") != tc.nextPage {
				t.Errorf("%d orders, cursor %q; want %d, next page %v", len(l.Orders), l.NextCursor, tc.n, tc.nextPage)
			}
		})
	}
	t.Run("the last page has no next_cursor", func(t *testing.T) {
		first := decode[queries.OrderList](t, get(t, h, "/v1/orders?limit=200"), http.StatusOK)
		rec := get(t, h, "/v1/orders?limit=200&cursor="+first.NextCursor)
		last := decode[queries.OrderList](t, rec, http.StatusOK)
		if len(last.Orders) != 5 || last.NextCursor != "" || strings.Contains(rec.Body.String(), "next_cursor") {
			t.Errorf("last page: %d orders, body %s", len(last.Orders), rec.Body)
		}
	})
	t.Run("a page that ends exactly at the last order has no next_cursor", func(t *testing.T) {
		l := decode[queries.OrderList](t, get(t, h, "/v1/orders?limit=5&cursor="+pageCursor(t, h, 200)), http.StatusOK)
		if len(l.Orders) != 5 || l.NextCursor != "" {
			t.Errorf("%d orders, cursor %q", len(l.Orders), l.NextCursor)
		}
	})
}

// pageCursor returns the cursor after the first n orders.
func pageCursor(t *testing.T, h http.Handler, n int) string {
	t.Helper()
	l := decode[queries.OrderList](t, get(t, h, fmt.Sprintf("/v1/orders?limit=%d", n)), http.StatusOK)
	return l.NextCursor
}

func TestListOrdersFilters(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := newServer(t, pool)
	type key struct{ customer, status string }
	byKey := map[key][]string{}
	var fixtures []order
	i := 0
	for _, c := range []string{"alice", "bob"} {
		for _, s := range []string{"pending", "paid", "cancelled"} {
			for range 3 {
				i++
				o := order{id: newID(t), customer: c, status: s, created: base.Add(time.Duration(i) * time.Second)}
				fixtures = append(fixtures, o)
				// Newest first: later fixtures go in front.
				byKey[key{c, s}] = append([]string{o.id}, byKey[key{c, s}]...)
				byKey[key{c, ""}] = append([]string{o.id}, byKey[key{c, ""}]...)
				byKey[key{"", s}] = append([]string{o.id}, byKey[key{"", s}]...)
				byKey[key{}] = append([]string{o.id}, byKey[key{}]...)
			}
		}
	}
	insertOrders(t, pool, fixtures...)

	cases := []struct {
		query string
		want  []string
	}{
		{query: "status=paid", want: byKey[key{"", "paid"}]},
		{query: "customer_id=bob", want: byKey[key{"bob", ""}]},
		{query: "customer_id=alice&status=cancelled", want: byKey[key{"alice", "cancelled"}]},
		{query: "customer_id=carol", want: nil},
		{query: "status=expired", want: nil},
		{query: "status=&customer_id=", want: byKey[key{}]},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			ids, _ := listAll(t, h, "/v1/orders?limit=2&"+tc.query, nil)
			if !slices.Equal(ids, tc.want) {
				t.Errorf("got  %v\nwant %v", ids, tc.want)
			}
		})
	}
}

func TestListOrdersValidation(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := newServer(t, pool)
	b64 := base64.RawURLEncoding.EncodeToString
	cases := []struct {
		name   string
		query  string
		header []string
		fields []string
	}{
		{name: "unknown status", query: "status=lost", fields: []string{"status"}},
		{name: "status in upper case", query: "status=PAID", fields: []string{"status"}},
		{name: "customer id with a dot", query: "customer_id=a.b", fields: []string{"customer_id"}},
		{name: "customer id too long", query: "customer_id=" + strings.Repeat("c", 65), fields: []string{"customer_id"}},
		{name: "limit 0", query: "limit=0", fields: []string{"limit"}},
		{name: "limit 201", query: "limit=201", fields: []string{"limit"}},
		{name: "limit negative", query: "limit=-1", fields: []string{"limit"}},
		{name: "limit not a number", query: "limit=ten", fields: []string{"limit"}},
		{name: "limit a fraction", query: "limit=1.5", fields: []string{"limit"}},
		{name: "cursor not base64", query: "cursor=%21%21", fields: []string{"cursor"}},
		{name: "cursor too short", query: "cursor=" + b64([]byte{1, 2, 3}), fields: []string{"cursor"}},
		{name: "cursor of another version", query: "cursor=" + b64(make([]byte, 25)), fields: []string{"cursor"}},
		{name: "cursor of the inventory", query: "cursor=" + b64([]byte("\x01sku-1")), fields: []string{"cursor"}},
		{name: "unknown parameter", query: "sort=asc", fields: []string{"sort"}},
		{name: "parameter given twice", query: "limit=1&limit=2", fields: []string{"limit"}},
		{name: "malformed consistent_with", query: "consistent_with=abc", fields: []string{"consistent_with"}},
		{name: "negative consistent_with", query: "consistent_with=-1", fields: []string{"consistent_with"}},
		{name: "malformed Consistency-Token", header: []string{"Consistency-Token", "v1"}, fields: []string{"Consistency-Token"}},
		{name: "every bad field at once", query: "status=x&customer_id=-&limit=0&cursor=x&what=1", fields: []string{"status", "customer_id", "limit", "cursor", "what"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := checkProblem(t, get(t, h, "/v1/orders?"+tc.query, tc.header...), http.StatusUnprocessableEntity, "validation_failed", "")
			var got []string
			for k := range p.Errors {
				got = append(got, k)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.fields))
			if !slices.Equal(got, want) {
				t.Errorf("errors %v, want fields %v", p.Errors, want)
			}
		})
	}
}
