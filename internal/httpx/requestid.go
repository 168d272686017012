package httpx

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
)

// MaxIDLen bounds X-Request-Id and X-Correlation-Id. They are stored in
// every event a request causes, for good, so a caller must not be able to
// put a megabyte into the history (or an event over the store's message
// size, a command that could never succeed) with a header.
const MaxIDLen = 128

// ValidID reports whether s may be kept as a request or correlation id:
// 1 to MaxIDLen printable ASCII characters.
func ValidID(s string) bool { return PrintableASCII(s, MaxIDLen) }

// PrintableASCII reports whether s is 1 to max printable ASCII characters,
// the shape of every header value the engine keeps (ids, idempotency keys).
func PrintableASCII(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// RequestID gives each request its id: the caller's X-Request-Id when it
// is a single ValidID, else a fresh UUID. It stores it where chi's
// middleware.GetReqID finds it; the response's X-Request-Id says which one
// the engine used (and stored in the events).
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := ""
		if vs := r.Header.Values("X-Request-Id"); len(vs) == 1 && ValidID(vs[0]) {
			id = vs[0]
		} else {
			id = uuid.NewString()
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), middleware.RequestIDKey, id)))
	})
}
