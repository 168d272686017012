package queries_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/queries"
)

// insertItems writes rm.inventory rows.
func insertItems(t *testing.T, pool *pgxpool.Pool, items ...queries.InventoryView) {
	t.Helper()
	for _, it := range items {
		_, err := pool.Exec(context.Background(), `INSERT INTO rm.inventory (sku, on_hand, reserved, version, updated_at)
			VALUES ($1, $2, $3, $4, now())`, it.SKU, it.OnHand, it.Reserved, int64(it.Version))
		if err != nil {
			t.Fatal(err)
		}
	}
}

// listSKUs follows next_cursor from path to the last page.
func listSKUs(t *testing.T, h http.Handler, path string) (skus []string, pages int) {
	t.Helper()
	cursor := ""
	for {
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		l := decode[queries.InventoryList](t, get(t, h, p), http.StatusOK)
		pages++
		for _, it := range l.Items {
			if it.Available != it.OnHand-it.Reserved {
				t.Errorf("%s: available %d, on_hand %d, reserved %d", it.SKU, it.Available, it.OnHand, it.Reserved)
			}
			skus = append(skus, it.SKU)
		}
		if l.NextCursor == "" || pages > 100 {
			return skus, pages
		}
		cursor = l.NextCursor
	}
}

func TestInventory(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := newServer(t, pool)

	t.Run("an empty list is []", func(t *testing.T) {
		rec := get(t, h, "/v1/inventory")
		if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"items":[]}` {
			t.Errorf("status %d body %s", rec.Code, rec.Body)
		}
	})

	// sku-00 .. sku-11: available = 11 - i.
	var all []string
	for i := range 12 {
		sku := fmt.Sprintf("sku-%02d", i)
		all = append(all, sku)
		insertItems(t, pool, queries.InventoryView{SKU: sku, OnHand: 11, Reserved: int64(i), Version: uint64(i + 1)})
	}

	t.Run("item", func(t *testing.T) {
		rec := get(t, h, "/v1/inventory/sku-03")
		got := decode[queries.InventoryView](t, rec, http.StatusOK)
		want := queries.InventoryView{SKU: "sku-03", OnHand: 11, Reserved: 3, Available: 8, Version: 4}
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
		if rec.Header().Get("ETag") != `"4"` {
			t.Errorf("ETag %q", rec.Header().Get("ETag"))
		}
	})
	t.Run("unknown sku is 404", func(t *testing.T) {
		checkProblem(t, get(t, h, "/v1/inventory/nope"), http.StatusNotFound, "not_found", "")
	})
	t.Run("malformed sku is 422", func(t *testing.T) {
		checkProblem(t, get(t, h, "/v1/inventory/_bad"), http.StatusUnprocessableEntity, "validation_failed", "sku")
		checkProblem(t, get(t, h, "/v1/inventory/"+strings.Repeat("s", 65)), http.StatusUnprocessableEntity, "validation_failed", "sku")
	})

	lists := []struct {
		query string
		want  []string
		pages int
	}{
		{query: "limit=5", want: all, pages: 3},
		{query: "limit=4", want: all, pages: 3},
		{query: "limit=200", want: all, pages: 1},
		{query: "limit=", want: all, pages: 1},
		{query: "available_below=3&limit=1", want: all[9:], pages: 3},
		{query: "available_below=0", want: nil, pages: 1},
		{query: "available_below=2&limit=1", want: all[10:], pages: 2},
		{query: "available_below=1000&limit=7", want: all, pages: 2},
	}
	for _, tc := range lists {
		t.Run("list "+tc.query, func(t *testing.T) {
			got, pages := listSKUs(t, h, "/v1/inventory?"+tc.query)
			if !slices.Equal(got, tc.want) || pages != tc.pages {
				t.Errorf("got %v in %d pages, want %v in %d", got, pages, tc.want, tc.pages)
			}
		})
	}

	bad := []struct{ query, field string }{
		{"available_below=-1", "available_below"},
		{"available_below=x", "available_below"},
		{"available_below=1e3", "available_below"},
		{"limit=0", "limit"},
		{"limit=201", "limit"},
		{"cursor=abc", "cursor"},
		{"cursor=AV9iYWQ", "cursor"}, // version 1 with the invalid SKU "_bad"
		{"sku=x", "sku"},
		{"consistent_with=1.0", "consistent_with"},
	}
	for _, tc := range bad {
		t.Run("422 for "+tc.query, func(t *testing.T) {
			checkProblem(t, get(t, h, "/v1/inventory?"+tc.query), http.StatusUnprocessableEntity, "validation_failed", tc.field)
		})
	}
}
