package queries_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/queries"
)

func TestHandleVerify(t *testing.T) {
	t.Parallel()
	e := enginetest.Start(t, time.Hour)
	store, app := e.Store, e.App
	ctx := context.Background()
	meta := func() commands.Meta { return commands.Meta{CommandID: app.NewID()} }
	var ids []string
	for range 2 {
		out, err := app.PlaceOrder(ctx, meta(), commands.PlaceOrder{CustomerID: "c", Currency: "USD",
			Lines: []domain.Line{{SKU: "A1", Qty: 1, UnitPriceCents: 100}}})
		if err != nil {
			t.Fatal(err)
		}
		id := out.State.ID
		if _, err := app.CancelOrder(ctx, meta(), id, commands.CancelOrder{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	h := queries.HandleVerify(queries.NewVerifyJobs(ctx, store, nil, nil), nil)
	verify := func(t *testing.T) (map[string]json.RawMessage, eventstore.VerifyReport) {
		t.Helper()
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/v1/audit/verify", nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("status %d %s: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		var raw map[string]json.RawMessage
		var rep eventstore.VerifyReport
		if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		return raw, rep
	}

	t.Run("a clean store", func(t *testing.T) {
		raw, rep := verify(t)
		want := map[string]string{"ok": "true", "events_checked": "4", "aggregates": "2", "problems": "[]"}
		for k, v := range want {
			if string(raw[k]) != v {
				t.Errorf("%s = %s, want %s", k, raw[k], v)
			}
		}
		if len(raw) != len(want) {
			t.Errorf("keys %v, want those of %v", raw, want)
		}
		if !rep.OK {
			t.Fatalf("%+v", rep)
		}
	})

	t.Run("a deleted event", func(t *testing.T) {
		subject := eventstore.OrderSubjects + "." + ids[1]
		var seqs []uint64
		if err := store.History(ctx, subject, func(seq uint64, _ eventstore.Envelope) error {
			seqs = append(seqs, seq)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.New(store.Conn())
		if err != nil {
			t.Fatal(err)
		}
		stream, err := js.Stream(ctx, store.Stream(store.ShardOf(ids[1])))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.DeleteMsg(ctx, seqs[0]); err != nil {
			t.Fatal(err)
		}
		raw, rep := verify(t)
		if string(raw["ok"]) != "false" || rep.EventsChecked != 3 || len(rep.Problems) != 1 {
			t.Fatalf("got %+v", rep)
		}
		var problems []map[string]any
		if err := json.Unmarshal(raw["problems"], &problems); err != nil {
			t.Fatal(err)
		}
		p := problems[0]
		if p["subject"] != subject || p["aggregate_id"] != ids[1] || p["seq"] != float64(seqs[1]) ||
			p["version"] != float64(2) || p["expected_version"] != float64(1) || p["kind"] != "gap" || p["detail"] == "" {
			t.Fatalf("problem %v, want a gap on %s at seq %d", p, subject, seqs[1])
		}
	})

	t.Run("an unreadable store is 503", func(t *testing.T) {
		rec := httptest.NewRecorder()
		queries.HandleVerify(queries.NewVerifyJobs(context.Background(), failingVerifier{}, nil, nil), nil)(rec, httptest.NewRequest(http.MethodGet, "/v1/audit/verify", nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})

	t.Run("an unknown parameter is refused", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/v1/audit/verify?deep=1", nil))
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnprocessableEntity {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

type failingVerifier struct{}

func (failingVerifier) VerifyChains(context.Context, func(uint64)) (eventstore.VerifyReport, error) {
	return eventstore.VerifyReport{}, errors.Wrap(domain.ErrUnavailable, "no JetStream")
}
