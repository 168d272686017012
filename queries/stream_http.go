package queries

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/internal/httpx"
)

// HandleStream answers GET /v1/dashboard/stream with text/event-stream: a
// retry: field, then every snapshot of s as an "event: summary" with an
// increasing id:, and a comment as heartbeat while nothing changes. The
// current snapshot comes first on every (re)connection, so a client that
// sends Last-Event-ID is current at once: each event is a whole summary,
// there is nothing in between to replay. When the snapshot cannot be read,
// an "event: problem" (without id) says the figures are getting stale; the
// next summary says they are current again. Over the stream cap it
// answers 503 too_many_streams with Retry-After.
//
// The stream outlives the server's WriteTimeout, which would otherwise cut
// it: every write sets its own deadline, so a client that stops reading is
// dropped after WriteTimeout instead of holding a goroutine. (The server
// lifts the read deadline itself once the request is read.)
func HandleStream(s *Stream, log *slog.Logger) http.HandlerFunc {
	log = orDiscard(log)
	return func(w http.ResponseWriter, r *http.Request) {
		if ps := newParams(r); ps.err() != nil {
			fail(w, r, log, ps.err())
			return
		}
		c, err := s.subscribe()
		if err != nil {
			p := httpx.NewProblem(http.StatusServiceUnavailable, "too_many_streams",
				"as many dashboard streams are open as the engine allows; retry later")
			if errors.Is(err, ErrStreamClosed) {
				p = httpx.NewProblem(http.StatusServiceUnavailable, "shutting_down", "the engine is shutting down")
			}
			p.RetryAfter = int(s.cfg.Retry/time.Second) + 1
			httpx.WriteProblem(w, p)
			return
		}
		defer s.unsubscribe(c)
		rc := http.NewResponseController(w)
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no") // a buffering proxy would hold events back
		w.WriteHeader(http.StatusOK)
		write := func(b []byte) error {
			_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if _, err := w.Write(b); err != nil {
				return err
			}
			return rc.Flush()
		}
		if write([]byte("retry: "+strconv.FormatInt(s.cfg.Retry.Milliseconds(), 10)+"\n\n")) != nil {
			return
		}
		heartbeat := time.NewTicker(s.cfg.Heartbeat)
		defer heartbeat.Stop()
		for {
			var err error
			select {
			case frame := <-c.ch:
				err = write(frame)
			case <-heartbeat.C:
				err = write([]byte(": heartbeat\n\n"))
			case <-c.gone:
				return
			case <-s.ctx.Done():
				return
			case <-r.Context().Done():
				return
			}
			if err != nil {
				log.DebugContext(r.Context(), "dashboard stream: client gone", "err", err)
				return
			}
		}
	}
}
