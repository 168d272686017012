package httpx_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/httpx"
)

func TestStoreFailuresAnswer503TellingWhetherTheCommandMayHaveBeenStored(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	down := errors.Mark(errors.New("not connected to NATS"), domain.ErrUnavailable)
	lost := errors.Mark(errors.Mark(errors.New("connection to NATS lost"), domain.ErrUnavailable), domain.ErrOutcomeUnknown)
	for name, c := range map[string]struct {
		err        error
		code, says string
	}{
		"not sent":          {down, "unavailable", "nothing was written"},
		"sent, answer lost": {lost, "outcome_unknown", "same Idempotency-Key is safe"},
		"backlog full, not sent": {errors.WithHint(errors.Wrap(domain.ErrBacklogFull, "partition 3 is behind"), "nothing was written"),
			"reservation_backlog_full", "nothing was written"},
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

// TestACancelledRequestIsNoInternalError: a caller that went away before
// its answer was ready is logged at info, not as an internal error, while a
// cancellation the request did not ask for still is one.
func TestACancelledRequestIsNoInternalError(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	err := errors.Wrap(context.Canceled, "append not started")

	p := httpx.ProblemFor(gone, log, err)
	if p.Status == http.StatusInternalServerError || strings.Contains(logged.String(), "level=ERROR") {
		t.Errorf("a request its caller cancelled: %d, log %q; want no internal error", p.Status, logged.String())
	}
	logged.Reset()
	if p := httpx.ProblemFor(context.Background(), log, err); p.Status != http.StatusInternalServerError || !strings.Contains(logged.String(), "level=ERROR") {
		t.Errorf("a cancellation on a live request: %d, log %q; want an internal error", p.Status, logged.String())
	}
}
