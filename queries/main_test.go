package queries_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/pglocal"
	"github.com/orderengine/engine/projections"
	"github.com/orderengine/engine/queries"
)

// TestMain stops the private Postgres the tests start.
func TestMain(m *testing.M) { os.Exit(pglocal.Main(m)) }

// newDB returns a pool on a fresh database holding the schema.
func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	return enginetest.Postgres(t)
}

// newServer mounts the query handlers on Postgres, as cmd/engine does
// (without authentication).
func newServer(t *testing.T, pool *pgxpool.Pool, opts ...queries.Option) http.Handler {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	orders := projections.OrderReads{Pool: pool}
	inv := projections.InventoryReads{Pool: pool}
	cp := projections.CheckpointReads{Pool: pool, Projection: "main"}
	r := chi.NewRouter()
	r.Get("/v1/orders", queries.HandleListOrders(orders, cp, log, opts...))
	r.Get("/v1/orders/{id}", queries.HandleGetOrder(orders, cp, log, opts...))
	r.Get("/v1/inventory", queries.HandleListInventory(inv, cp, log, opts...))
	r.Get("/v1/inventory/{sku}", queries.HandleGetInventory(inv, cp, log, opts...))
	return r
}

// get serves one GET; header holds name, value pairs.
func get(t *testing.T, h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

type problem struct {
	Status int               `json:"status"`
	Code   string            `json:"code"`
	Errors map[string]string `json:"errors"`
}

// decode parses the body of rec, failing the test unless its status is
// want.
func decode[T any](t *testing.T, rec *httptest.ResponseRecorder, want int) T {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status %d, want %d; body %s", rec.Code, want, rec.Body)
	}
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	return v
}

// checkProblem checks a problem+json answer with the given status, code
// and, when field is not empty, an error for that field.
func checkProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code, field string) problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	p := decode[problem](t, rec, status)
	if p.Code != code {
		t.Errorf("code %q, want %q", p.Code, code)
	}
	if field != "" && p.Errors[field] == "" {
		t.Errorf("errors %v name no %q", p.Errors, field)
	}
	return p
}

// line is an order line fixture.
type line struct {
	no    int
	sku   string
	qty   int64
	price int64
}

// order is an rm.orders fixture row.
type order struct {
	id       string
	customer string
	status   string
	version  int64
	created  time.Time
	lines    []line
}

var base = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

func newID(t *testing.T) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// insertOrders writes orders, with their lines, into the read model.
func insertOrders(t *testing.T, pool *pgxpool.Pool, orders ...order) {
	t.Helper()
	ctx := context.Background()
	for _, o := range orders {
		if o.customer == "" {
			o.customer = "c1"
		}
		if o.status == "" {
			o.status = "pending"
		}
		if o.version == 0 {
			o.version = 1
		}
		var total int64
		for _, l := range o.lines {
			total += l.qty * l.price
		}
		_, err := pool.Exec(ctx, `INSERT INTO rm.orders (order_id, customer_id, status, currency, total_cents,
			refund_due_cents, version, created_at, updated_at) VALUES ($1, $2, $3, 'USD', $4, 0, $5, $6, $7)`,
			o.id, o.customer, o.status, total, o.version, o.created, o.created.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range o.lines {
			_, err := pool.Exec(ctx, `INSERT INTO rm.order_lines (order_id, line_no, sku, qty, unit_price_cents)
				VALUES ($1, $2, $3, $4, $5)`, o.id, l.no, l.sku, l.qty, l.price)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// setCheckpoint upserts the "main" projection's checkpoint of shard 0.
func setCheckpoint(t *testing.T, pool *pgxpool.Pool, seq uint64) {
	t.Helper()
	setShardCheckpoint(t, pool, 0, seq)
}

// setShardCheckpoint upserts the "main" projection's checkpoint of shard k.
func setShardCheckpoint(t *testing.T, pool *pgxpool.Pool, k int, seq uint64) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO rm.checkpoints (projection, shard, last_seq) VALUES ('main', $2, $1)
		ON CONFLICT (projection, shard) DO UPDATE SET last_seq = EXCLUDED.last_seq, updated_at = now()`, int64(seq), k)
	if err != nil {
		t.Error(err)
	}
}
