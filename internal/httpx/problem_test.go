package httpx_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/httpx"
)

func TestStoreFailuresAnswer503TellingWhetherTheCommandMayHaveBeenStored(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	down := errors.Mark(errors.New("not connected to NATS"), eventstore.ErrUnavailable)
	lost := errors.Mark(errors.Mark(errors.New("connection to NATS lost"), eventstore.ErrUnavailable), eventstore.ErrOutcomeUnknown)
	for name, c := range map[string]struct {
		err        error
		code, says string
	}{
		"not sent":          {down, "unavailable", "nothing was written"},
		"sent, answer lost": {lost, "outcome_unknown", "same Idempotency-Key is safe"},
	} {
		t.Run(name, func(t *testing.T) {
			p := httpx.ProblemFor(context.Background(), log, errors.Wrap(c.err, "append"))
			if p.Status != http.StatusServiceUnavailable || p.Code != c.code || p.RetryAfter < 1 {
				t.Errorf("got %d %s Retry-After %d, want 503 %s with Retry-After", p.Status, p.Code, p.RetryAfter, c.code)
			}
			if !strings.Contains(p.Detail, c.says) {
				t.Errorf("detail %q does not say %q", p.Detail, c.says)
			}
		})
	}
}
