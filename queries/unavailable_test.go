package queries_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1; pgxpool connects lazily, at the query.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	h := newServer(t, pool)
	id := "01a20175-b06f-7e24-bfa6-dd103fbd5943"
	for _, tc := range []struct {
		path   string
		header []string
	}{
		{path: "/v1/orders/" + id},
		{path: "/v1/orders"},
		{path: "/v1/inventory/sku-1"},
		{path: "/v1/inventory"},
		{path: "/v1/orders/" + id, header: []string{"Consistency-Token", "1"}},
	} {
		t.Run(tc.path+" "+fmtHeader(tc.header), func(t *testing.T) {
			rec := get(t, h, tc.path, tc.header...)
			checkProblem(t, rec, http.StatusServiceUnavailable, "unavailable", "")
			if rec.Header().Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q, want 1", rec.Header().Get("Retry-After"))
			}
		})
	}
}

func fmtHeader(h []string) string {
	if len(h) < 2 {
		return "without token"
	}
	return "with " + h[0]
}
