package main

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/internal/metrics"
)

// limitConfig bounds what one caller and all callers together may ask of
// the engine, so that overload turns into 429 and 503 answers instead of
// unbounded memory or a crash.
type limitConfig struct {
	// PerToken is each API token's sustained rate (requests/s) and Burst
	// its bucket. One token usually stands for a whole checkout frontend,
	// so the defaults are sized for a flash sale, not for one shopper.
	PerToken rate.Limit
	Burst    int
	// MaxInFlight caps the commands (every method but GET and HEAD) being
	// served at once; more get 503.
	MaxInFlight int
	// MaxReadsInFlight caps the reads (GET, HEAD) being served at once,
	// apart from commands: a read may wait up to 5 s for a Consistency-Token,
	// and a crowd of such reads must never leave a checkout without a slot.
	MaxReadsInFlight int
	// RequestTimeout is every request's deadline (exports and dashboard
	// streams excepted).
	RequestTimeout time.Duration
	// MaxStreams caps the dashboard streams open at once. Streams are
	// counted apart from MaxInFlight: they last as long as a page is open
	// and would otherwise hold in-flight slots for hours.
	MaxStreams int
}

var defaultLimits = limitConfig{PerToken: 2000, Burst: 4000, MaxInFlight: 1024, MaxReadsInFlight: 512,
	RequestTimeout: 15 * time.Second, MaxStreams: 64}

// orDefaults fills each zero field of c from defaultLimits.
func (c limitConfig) orDefaults() limitConfig {
	d := defaultLimits
	if c.PerToken != 0 {
		d.PerToken = c.PerToken
	}
	for _, f := range []struct{ dst, src *int }{{&d.Burst, &c.Burst}, {&d.MaxInFlight, &c.MaxInFlight},
		{&d.MaxReadsInFlight, &c.MaxReadsInFlight}, {&d.MaxStreams, &c.MaxStreams}} {
		if *f.src != 0 {
			*f.dst = *f.src
		}
	}
	if c.RequestTimeout != 0 {
		d.RequestTimeout = c.RequestTimeout
	}
	return d
}

// streamPath is the dashboard's event stream, which bounded leaves to the
// stream's own cap and deadlines.
const streamPath = "/v1/dashboard/stream"

// limiter applies a limitConfig. Its per-token buckets are keyed by the
// authenticated principal, so their number is bounded by the configured
// tokens, whatever callers send.
type limiter struct {
	cfg limitConfig
	// commands and reads are the two in-flight budgets, apart so that
	// neither kind of request can take every slot from the other.
	commands, reads chan struct{}
	mu              sync.Mutex
	buckets         map[string]*rate.Limiter
}

func newLimiter(cfg limitConfig) *limiter {
	return &limiter{cfg: cfg, commands: make(chan struct{}, cfg.MaxInFlight), reads: make(chan struct{}, cfg.MaxReadsInFlight),
		buckets: map[string]*rate.Limiter{}}
}

// perToken refuses a principal's requests beyond its rate with 429 and a
// Retry-After of the whole seconds until a token is back in its bucket. It
// runs after authentication.
func (l *limiter) perToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := httpx.PrincipalFrom(r.Context()).ID
		l.mu.Lock()
		b, ok := l.buckets[id]
		if !ok {
			b = rate.NewLimiter(l.cfg.PerToken, l.cfg.Burst)
			l.buckets[id] = b
		}
		l.mu.Unlock()
		res := b.Reserve()
		if delay := res.Delay(); delay > 0 {
			res.Cancel()
			metrics.RateLimited.WithLabelValues("token_rate").Inc()
			p := httpx.NewProblem(http.StatusTooManyRequests, "rate_limited", "too many requests for this token; retry after the time in Retry-After")
			p.RetryAfter = int(delay/time.Second) + 1
			httpx.WriteProblem(w, p)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bounded serves at most MaxInFlight commands and MaxReadsInFlight reads at
// once and gives each a deadline; a request over its cap is refused at once
// with 503 rather than queued, so memory stays bounded under any load.
// Health, readiness and metrics are exempt: an overloaded engine must still
// say so. So is the dashboard's stream, which the stream itself caps
// (MaxStreams).
func (l *limiter) bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics", streamPath:
			next.ServeHTTP(w, r)
			return
		}
		slots, reason := l.commands, "in_flight"
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			slots, reason = l.reads, "reads_in_flight"
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			metrics.RateLimited.WithLabelValues(reason).Inc()
			p := httpx.NewProblem(http.StatusServiceUnavailable, "overloaded", "the engine is serving as many requests as it may; retry shortly")
			p.RetryAfter = 1
			httpx.WriteProblem(w, p)
			return
		}
		// An export streams the whole history and keeps its own pace.
		if r.URL.Path != "/v1/audit/export" && l.cfg.RequestTimeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), l.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// parseLimits reads ENGINE_RATE_LIMIT, ENGINE_RATE_BURST,
// ENGINE_MAX_IN_FLIGHT, ENGINE_MAX_READS_IN_FLIGHT, ENGINE_MAX_STREAMS and
// ENGINE_REQUEST_TIMEOUT over the defaults.
func parseLimits(getenv func(string) string) (limitConfig, error) {
	c := defaultLimits
	if v := getenv("ENGINE_RATE_LIMIT"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return c, envError("ENGINE_RATE_LIMIT", v, "a positive number of requests per second per token, such as 2000")
		}
		c.PerToken = rate.Limit(f)
	}
	for _, n := range []struct {
		env string
		dst *int
	}{{"ENGINE_RATE_BURST", &c.Burst}, {"ENGINE_MAX_IN_FLIGHT", &c.MaxInFlight},
		{"ENGINE_MAX_READS_IN_FLIGHT", &c.MaxReadsInFlight}, {"ENGINE_MAX_STREAMS", &c.MaxStreams}} {
		if v := getenv(n.env); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i <= 0 {
				return c, envError(n.env, v, "a positive integer")
			}
			*n.dst = i
		}
	}
	if v := getenv("ENGINE_REQUEST_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, envError("ENGINE_REQUEST_TIMEOUT", v, "a Go duration such as 15s")
		}
		c.RequestTimeout = d
	}
	return c, nil
}

// parseBacklogLimit reads ENGINE_RESERVATION_BACKLOG_LIMIT: empty is
// commands.DefaultBacklogLimit, 0 turns the limit off.
func parseBacklogLimit(v string) (uint64, error) {
	if v == "" {
		return commands.DefaultBacklogLimit, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, envError("ENGINE_RESERVATION_BACKLOG_LIMIT", v, "a number of reservation requests per partition, such as 10000 (0: no limit)")
	}
	return n, nil
}
