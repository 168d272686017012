package queries_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/projections"
	"github.com/orderengine/engine/queries"
)

// newAdminServer mounts the admin handlers on a (not running) Runner of the
// main projection, as cmd/engine would (without authentication).
func newAdminServer(t *testing.T, pool *pgxpool.Pool) http.Handler {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return adminRoutes(projections.Admin{Runners: []*projections.Runner{projections.NewRunner(nil, pool, log)}}, log)
}

func adminRoutes(a queries.ProjectionAdmin, log *slog.Logger) http.Handler {
	r := chi.NewRouter()
	r.Get("/v1/admin/projections", queries.HandleListProjections(a, log))
	r.Get("/v1/admin/dead-letters", queries.HandleListDeadLetters(a, log))
	r.Post("/v1/admin/dead-letters/{id}/retry", queries.HandleRetryDeadLetter(a, log))
	return r
}

func adminPost(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
	return rec
}

// adminSKUEnvelope returns the stored form of a SKU event at version v.
func adminSKUEnvelope(t *testing.T, sku string, v uint64, e domain.SKUEvent) string {
	t.Helper()
	typ, data, err := domain.EncodeSKUEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	env := eventstore.Envelope{Type: typ, SchemaVersion: domain.SchemaVersion, AggregateType: "inventory",
		AggregateID: sku, Version: v, OccurredAt: base, Data: data}
	env.Seal("")
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// adminFileDeadLetter inserts a dead letter of the main projection and returns
// its id.
func adminFileDeadLetter(t *testing.T, pool *pgxpool.Pool, seq int64, subject, env string, resolved bool) int64 {
	t.Helper()
	var id int64
	err := pool.QueryRow(context.Background(), `INSERT INTO rm.dead_letters
	(projection, seq, subject, event_type, error, attempts, envelope, resolved_at)
VALUES ('main', $1, $2, 'OnHandSet', 'boom', 3, $3::jsonb, CASE WHEN $4 THEN now() END) RETURNING id`,
		seq, subject, env, resolved).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func adminKeys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestAdminListProjections(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := newAdminServer(t, pool)
	setCheckpoint(t, pool, 42)
	env := adminSKUEnvelope(t, "A-1", 1, domain.OnHandSet{SKU: "A-1", OnHand: 1, At: base})
	adminFileDeadLetter(t, pool, 7, "inventory.A-1", env, false)
	adminFileDeadLetter(t, pool, 8, "inventory.A-1", env, true)

	rec := get(t, h, "/v1/admin/projections")
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	raw := decode[[]map[string]json.RawMessage](t, rec, http.StatusOK)
	if len(raw) != 1 {
		t.Fatalf("%d projections: %s", len(raw), rec.Body)
	}
	want := []string{"checkpoint", "checkpoints", "dead_letters", "lag", "lag_seconds", "name", "state"}
	if got := adminKeys(raw[0]); !slices.Equal(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
	got := decode[[]queries.ProjectionReport](t, rec, http.StatusOK)
	if w := (queries.ProjectionReport{Name: "main", Checkpoint: 42, Checkpoints: []uint64{42}, State: "starting", DeadLetters: 1}); !reflect.DeepEqual(got[0], w) {
		t.Errorf("got %+v, want %+v", got[0], w)
	}

	t.Run("unknown parameter is a 422", func(t *testing.T) {
		checkProblem(t, get(t, h, "/v1/admin/projections?x=1"), http.StatusUnprocessableEntity, "validation_failed", "x")
	})
}

func TestAdminListDeadLetters(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := newAdminServer(t, pool)

	t.Run("none is an empty list", func(t *testing.T) {
		rec := get(t, h, "/v1/admin/dead-letters")
		if body := strings.TrimSpace(rec.Body.String()); rec.Code != http.StatusOK || body != `{"dead_letters":[]}` {
			t.Errorf("%d %s", rec.Code, body)
		}
	})

	env := adminSKUEnvelope(t, "A-1", 1, domain.OnHandSet{SKU: "A-1", OnHand: 1, At: base})
	older := adminFileDeadLetter(t, pool, 7, "inventory.A-1", env, true)
	newer := adminFileDeadLetter(t, pool, 9, "inventory.A-1", env, false)

	t.Run("newest first, with every field", func(t *testing.T) {
		rec := get(t, h, "/v1/admin/dead-letters")
		raw := decode[map[string][]map[string]json.RawMessage](t, rec, http.StatusOK)
		want := []string{"attempts", "created_at", "envelope", "error", "event_type", "id", "projection",
			"resolved_at", "seq", "shard", "subject"}
		if len(raw["dead_letters"]) != 2 || !slices.Equal(adminKeys(raw["dead_letters"][0]), want) {
			t.Fatalf("body %s, want two dead letters with fields %v", rec.Body, want)
		}
		got := decode[queries.DeadLetterList](t, rec, http.StatusOK).DeadLetters
		if got[0].ID != newer || got[1].ID != older {
			t.Errorf("ids %d, %d; want %d, %d", got[0].ID, got[1].ID, newer, older)
		}
		d := got[0]
		if d.Projection != "main" || d.Seq != 9 || d.Subject != "inventory.A-1" || d.EventType != "OnHandSet" ||
			d.Error != "boom" || d.Attempts != 3 || d.ResolvedAt != nil || d.CreatedAt.IsZero() {
			t.Errorf("dead letter %+v", d)
		}
		var e eventstore.Envelope
		if err := json.Unmarshal(d.Envelope, &e); err != nil || e.AggregateID != "A-1" {
			t.Errorf("envelope %s (%v)", d.Envelope, err)
		}
		if string(raw["dead_letters"][0]["resolved_at"]) != "null" || got[1].ResolvedAt == nil {
			t.Errorf("resolved_at %s and %v", raw["dead_letters"][0]["resolved_at"], got[1].ResolvedAt)
		}
	})
	t.Run("unresolved only", func(t *testing.T) {
		got := decode[queries.DeadLetterList](t, get(t, h, "/v1/admin/dead-letters?unresolved=true"), http.StatusOK).DeadLetters
		if len(got) != 1 || got[0].ID != newer {
			t.Errorf("got %+v, want only %d", got, newer)
		}
		got = decode[queries.DeadLetterList](t, get(t, h, "/v1/admin/dead-letters?unresolved=false"), http.StatusOK).DeadLetters
		if len(got) != 2 {
			t.Errorf("unresolved=false: %d dead letters, want 2", len(got))
		}
	})
	t.Run("unknown parameter is a 422", func(t *testing.T) {
		checkProblem(t, get(t, h, "/v1/admin/dead-letters?projection=main"), http.StatusUnprocessableEntity, "validation_failed", "projection")
	})
	t.Run("bad unresolved is a 422", func(t *testing.T) {
		checkProblem(t, get(t, h, "/v1/admin/dead-letters?unresolved=yes"), http.StatusUnprocessableEntity, "validation_failed", "unresolved")
	})
}

func TestAdminRetryDeadLetter(t *testing.T) {
	t.Parallel()
	pool := newDB(t)
	h := newAdminServer(t, pool)
	ctx := context.Background()
	onHand := func(t *testing.T) int64 {
		t.Helper()
		var n int64
		if err := pool.QueryRow(ctx, `SELECT on_hand FROM rm.inventory WHERE sku = 'RETRY-1'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("malformed id is a 404", func(t *testing.T) {
		for _, id := range []string{"abc", "0", "-3", "1.5", "99999999999999999999"} {
			checkProblem(t, adminPost(t, h, "/v1/admin/dead-letters/"+id+"/retry"), http.StatusNotFound, "not_found", "")
		}
	})
	t.Run("unknown id is a 404", func(t *testing.T) {
		checkProblem(t, adminPost(t, h, "/v1/admin/dead-letters/424242/retry"), http.StatusNotFound, "not_found", "")
	})

	applied := adminFileDeadLetter(t, pool, 10, "inventory.RETRY-1",
		adminSKUEnvelope(t, "RETRY-1", 1, domain.OnHandSet{SKU: "RETRY-1", OnHand: 9, At: base}), false)
	t.Run("a retry that applies answers the resolved dead letter", func(t *testing.T) {
		d := decode[queries.DeadLetterReport](t, adminPost(t, h, "/v1/admin/dead-letters/"+strconv.FormatInt(applied, 10)+"/retry"), http.StatusOK)
		if d.ID != applied || d.ResolvedAt == nil || d.Attempts != 4 {
			t.Errorf("dead letter %+v, want resolved after 4 attempts", d)
		}
		if n := onHand(t); n != 9 {
			t.Errorf("on_hand %d, want 9", n)
		}
		again := decode[queries.DeadLetterReport](t, adminPost(t, h, "/v1/admin/dead-letters/"+strconv.FormatInt(applied, 10)+"/retry"), http.StatusOK)
		if again.ResolvedAt == nil || again.Attempts != 4 {
			t.Errorf("retry of a resolved dead letter: %+v", again)
		}
	})

	// The row is at version 1 now: a version-1 event for it cannot apply.
	stale := adminFileDeadLetter(t, pool, 11, "inventory.RETRY-1",
		adminSKUEnvelope(t, "RETRY-1", 1, domain.Restocked{SKU: "RETRY-1", Qty: 5, At: base}), false)
	t.Run("a retry that fails is a 409 and counts the attempt", func(t *testing.T) {
		rec := adminPost(t, h, "/v1/admin/dead-letters/"+strconv.FormatInt(stale, 10)+"/retry")
		checkProblem(t, rec, http.StatusConflict, "retry_failed", "")
		var detail struct{ Detail string }
		if err := json.Unmarshal(rec.Body.Bytes(), &detail); err != nil || !strings.Contains(detail.Detail, "past the event's version") {
			t.Errorf("detail %q (%v)", detail.Detail, err)
		}
		got := decode[queries.DeadLetterList](t, get(t, h, "/v1/admin/dead-letters?unresolved=true"), http.StatusOK).DeadLetters
		if len(got) != 1 || got[0].ID != stale || got[0].Attempts != 4 || got[0].ResolvedAt != nil ||
			!strings.Contains(got[0].Error, "past the event's version") {
			t.Errorf("after a failed retry: %+v", got)
		}
		if n := onHand(t); n != 9 {
			t.Errorf("on_hand %d, want 9", n)
		}
	})
}

// unavailableAdmin fails like a read model whose database is unreachable.
type unavailableAdmin struct{}

func (unavailableAdmin) Projections(context.Context) ([]queries.ProjectionReport, error) {
	return nil, errors.Mark(errors.New("dial tcp: refused"), domain.ErrUnavailable)
}

func (unavailableAdmin) DeadLetters(context.Context, bool) ([]queries.DeadLetterReport, error) {
	return nil, errors.Mark(errors.New("dial tcp: refused"), domain.ErrUnavailable)
}

func (unavailableAdmin) Retry(context.Context, int64) (queries.DeadLetterReport, error) {
	return queries.DeadLetterReport{}, errors.Mark(errors.New("dial tcp: refused"), domain.ErrUnavailable)
}

func TestAdminUnavailable(t *testing.T) {
	t.Parallel()
	h := adminRoutes(unavailableAdmin{}, nil)
	for _, rec := range []*httptest.ResponseRecorder{
		get(t, h, "/v1/admin/projections"),
		get(t, h, "/v1/admin/dead-letters"),
		adminPost(t, h, "/v1/admin/dead-letters/1/retry"),
	} {
		checkProblem(t, rec, http.StatusServiceUnavailable, "unavailable", "")
		if rec.Header().Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	}
}
