package queries_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/queries"
)

type fakeComparer struct {
	diffs []queries.Difference
	err   error
}

func (f fakeComparer) CompareWithReplay(context.Context) ([]queries.Difference, error) {
	return f.diffs, f.err
}

func TestHandleVerifyReadModels(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	serve := func(c queries.ReplayComparer, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		queries.HandleVerifyReadModels(c, log)(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	t.Run("equal read models are ok with an empty list", func(t *testing.T) {
		rec := serve(fakeComparer{}, "/v1/audit/verify/read-models")
		if rec.Code != http.StatusOK || rec.Body.String() != `{"ok":true,"differences":[]}`+"\n" {
			t.Errorf("%d %q", rec.Code, rec.Body)
		}
	})
	t.Run("differences are listed and not ok", func(t *testing.T) {
		d := queries.Difference{Table: "inventory", Key: "SKU-A", Live: `{"on_hand": 3}`, Replayed: `{"on_hand": 2}`}
		rec := serve(fakeComparer{diffs: []queries.Difference{d}}, "/v1/audit/verify/read-models")
		var rep queries.ReadModelsReport
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &rep) != nil || rep.OK ||
			len(rep.Differences) != 1 || rep.Differences[0] != d {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("an unreachable database is a 503", func(t *testing.T) {
		rec := serve(fakeComparer{err: errors.Mark(errors.New("down"), domain.ErrUnavailable)}, "/v1/audit/verify/read-models")
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("unknown parameters are a 422", func(t *testing.T) {
		if rec := serve(fakeComparer{}, "/v1/audit/verify/read-models?x=1"); rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
}
