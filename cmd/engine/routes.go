package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/httpx"
	"github.com/orderengine/engine/internal/metrics"
	"github.com/orderengine/engine/internal/tracing"
	"github.com/orderengine/engine/projections"
	"github.com/orderengine/engine/queries"
	"github.com/orderengine/engine/web"
	"github.com/orderengine/engine/webhooks"
)

type serverDeps struct {
	app     *commands.App
	store   *eventstore.Store
	db      *pgxpool.Pool // read models; nil in tests of the write side alone
	runners []*projections.Runner
	// rebuilds runs admin-started rebuilds; serve closes it before the pool.
	rebuilds *projections.Rebuilds
	tokens   *httpx.Tokens
	log      *slog.Logger
	// limits bounds request rates and concurrency; zero fields mean the
	// defaults.
	limits limitConfig
	// streams ends the dashboard's event streams and a running audit
	// verification when it is done; serve cancels it as shutdown begins,
	// which http.Server.Shutdown does not do for long-lived requests. Nil:
	// streams end with their requests.
	streams context.Context
	// metrics is the /metrics handler, when serve shares it with the
	// ENGINE_METRICS_ADDR listener (both then repeat the same last values
	// while Postgres is down); nil: newServer makes its own.
	metrics http.Handler
	// webhooks registers and delivers webhooks; nil: no webhook routes
	// (ENGINE_FEED=off, or tests of other parts).
	webhooks *webhooks.Service
}

// newServer is the engine's HTTP API; every route is here, each behind the
// roles of API.md that may call it.
func newServer(d serverDeps) http.Handler {
	d.limits = d.limits.orDefaults()
	if d.metrics == nil {
		d.metrics = metricsHandler(d)
	}
	lim := newLimiter(d.limits)
	// lifetime ends with serve's shutdown: dashboard streams and audit
	// verifications outlive their requests but not the engine.
	lifetime := d.streams
	if lifetime == nil {
		lifetime = context.Background()
	}
	// guard authenticates, checks the role, then the token's rate.
	guard := func(roles ...httpx.Role) func(http.Handler) http.Handler {
		auth := d.tokens.Require(roles...)
		return func(next http.Handler) http.Handler { return auth(lim.perToken(next)) }
	}
	r := chi.NewRouter()
	r.Use(httpx.RequestID, tracing.HTTP("/healthz", "/readyz", "/metrics"), requestLog(d.log), noSniffNoStore, recoverer(d.log), lim.bounded)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusNotFound, "not_found", "no such route"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route"))
	})

	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", handleReady(d))
	r.Get("/openapi.json", handleOpenAPI)
	r.Get("/", web.HandleIndex)
	r.Get("/assets/{name}", web.HandleAsset)
	r.With(guard(httpx.RoleClient, httpx.RoleViewer, httpx.RoleAuditor)).Get("/v1/whoami", handleWhoami)
	// API.md opens only /healthz, /readyz and /openapi.json: the metrics
	// name routes, projections and volumes, which are the operator's.
	r.With(guard(httpx.RoleViewer, httpx.RoleAuditor)).Method(http.MethodGet, "/metrics", d.metrics)

	orders := guard(httpx.RoleClient)
	admin := guard(httpx.RoleAdmin)
	r.With(orders).Post("/v1/orders", commands.HandlePlaceOrder(d.app))
	r.With(orders).Post("/v1/orders/{id}/payment", commands.HandlePayOrder(d.app))
	r.With(orders).Post("/v1/orders/{id}/shipment", commands.HandleShipOrder(d.app))
	r.With(orders).Post("/v1/orders/{id}/delivery", commands.HandleDeliverOrder(d.app))
	r.With(orders).Post("/v1/orders/{id}/cancellation", commands.HandleCancelOrder(d.app))
	r.With(orders).Post("/v1/orders/{id}/refunds", commands.HandleRefundOrder(d.app))
	r.With(orders).Post("/v1/orders/{id}/returns", commands.HandleReturnOrder(d.app))
	r.With(admin).Put("/v1/inventory/{sku}", commands.HandleSetOnHand(d.app))
	r.With(admin).Post("/v1/inventory/{sku}/restock", commands.HandleRestock(d.app))

	audit := guard(httpx.RoleAuditor)
	r.With(audit).Get("/v1/audit/orders/{id}/events", queries.HandleOrderEvents(d.store, d.log))
	r.With(audit).Get("/v1/audit/orders/{id}/state", queries.HandleOrderState(d.store, d.log))
	r.With(audit).Get("/v1/audit/inventory/{sku}/events", queries.HandleInventoryEvents(d.store, d.log))
	r.With(audit).Get("/v1/audit/export", queries.HandleExport(d.store, d.log))
	var replay queries.ReplayComparer
	if d.db != nil {
		replay = projections.ReplayComparison{Store: d.store, Pool: d.db, Log: d.log}
		r.With(audit).Get("/v1/audit/verify/read-models", queries.HandleVerifyReadModels(replay, d.log))
	}
	verifies := queries.NewVerifyJobs(lifetime, d.store, replay, d.log)
	r.With(audit).Get("/v1/audit/verify", queries.HandleVerify(verifies, d.log))
	r.With(audit).Post("/v1/audit/verify", queries.HandleStartVerify(verifies, d.log))
	r.With(audit).Get(queries.VerifyJobPath+"{id}", queries.HandleVerifyJob(verifies, d.log))

	if d.db != nil {
		reads := guard(httpx.RoleClient, httpx.RoleViewer, httpx.RoleAuditor)
		orderReads, inventoryReads := projections.OrderReads{Pool: d.db}, projections.InventoryReads{Pool: d.db}
		checkpoint := projections.CheckpointReads{Pool: d.db, Projection: projections.MainProjection}
		for _, r := range d.runners {
			if r.Name() == projections.MainProjection {
				checkpoint.Runner = r
			}
		}
		head := queries.WithStoreHead(queries.NewHeadCache(d.store))
		r.With(reads).Get("/v1/orders/{id}", queries.HandleGetOrder(orderReads, checkpoint, d.log, head))
		r.With(reads).Get("/v1/orders", queries.HandleListOrders(orderReads, checkpoint, d.log, head))
		r.With(reads).Get("/v1/inventory/{sku}", queries.HandleGetInventory(inventoryReads, checkpoint, d.log, head))
		r.With(reads).Get("/v1/inventory", queries.HandleListInventory(inventoryReads, checkpoint, d.log, head))

		dashboard := projections.DashboardReads{Pool: d.db}
		statuses := projections.Statuses{Runners: d.runners, Rebuilds: d.rebuilds}
		// Clients read orders and inventory; the dashboard is for viewers.
		dash := guard(httpx.RoleViewer, httpx.RoleAuditor)
		var backlog []queries.Option
		if d.app != nil && d.app.Backlog != nil {
			backlog = append(backlog, queries.WithReservationBacklog(d.app.Backlog))
		}
		r.With(dash).Get("/v1/dashboard/summary", queries.HandleDashboardSummary(dashboard, statuses, checkpoint, d.log, append(backlog, head)...))
		r.With(dash).Get("/v1/dashboard/timeseries", queries.HandleDashboardTimeseries(dashboard, checkpoint, d.log, head))
		stream := queries.NewStream(lifetime, queries.DashboardSource(dashboard, statuses, time.Now, backlog...),
			queries.StreamConfig{MaxClients: d.limits.MaxStreams}, d.log)
		r.With(dash).Get("/v1/dashboard/stream", queries.HandleStream(stream, d.log))

		rebuilds := d.rebuilds
		if rebuilds == nil {
			rebuilds = projections.NewRebuilds(d.store, d.db, d.log)
		}
		projAdmin := projections.Admin{Runners: d.runners, Rebuilds: rebuilds}
		r.With(admin).Get("/v1/admin/projections", queries.HandleListProjections(projAdmin, d.log))
		r.With(admin).Post("/v1/admin/projections/{name}/rebuild", queries.HandleRebuildProjection(rebuilds, d.log))
		r.With(admin).Get("/v1/admin/projections/{name}/rebuild", queries.HandleRebuildStatus(rebuilds, d.log))
		r.With(admin).Get("/v1/admin/dead-letters", queries.HandleListDeadLetters(projAdmin, d.log))
		r.With(admin).Post("/v1/admin/dead-letters/{id}/retry", queries.HandleRetryDeadLetter(projAdmin, d.log))
	}
	if d.webhooks != nil {
		r.With(admin).Post("/v1/admin/webhooks", webhooks.HandleRegister(d.webhooks, d.log))
		r.With(admin).Get("/v1/admin/webhooks", webhooks.HandleList(d.webhooks, d.log))
		r.With(admin).Get("/v1/admin/webhooks/{id}", webhooks.HandleGet(d.webhooks, d.log))
		r.With(admin).Delete("/v1/admin/webhooks/{id}", webhooks.HandleDelete(d.webhooks, d.log))
		r.With(admin).Get("/v1/admin/webhooks/{id}/dead-letters", webhooks.HandleDeadLetters(d.webhooks, d.log))
		r.With(admin).Post("/v1/admin/webhooks/{id}/dead-letters/redeliver", webhooks.HandleRedeliver(d.webhooks, d.log))
	}
	return r
}

// handleWhoami answers GET /v1/whoami with the token's role, so that the
// dashboard can tell a bad token from a weak one without trying calls that
// would be refused.
func handleWhoami(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, map[string]httpx.Role{"role": httpx.PrincipalFrom(r.Context()).Role})
}

func handleReady(d serverDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := d.store.Ping(r.Context()); err != nil {
			p := httpx.NewProblem(http.StatusServiceUnavailable, "not_ready", "the event store is not reachable")
			p.RetryAfter = 1
			httpx.WriteProblem(w, p)
			return
		}
		if d.db != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := d.db.Ping(ctx); err != nil {
				p := httpx.NewProblem(http.StatusServiceUnavailable, "not_ready", "the read-model database is not reachable")
				p.RetryAfter = 1
				httpx.WriteProblem(w, p)
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		for _, run := range d.runners {
			// A projection that stopped applying events serves stale reads.
			if s, err := run.Status(ctx); err != nil || s.State == projections.StateInterrupted {
				p := httpx.NewProblem(http.StatusServiceUnavailable, "not_ready", "a projection is not applying events")
				p.RetryAfter = 1
				httpx.WriteProblem(w, p)
				return
			}
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// requestLog writes one JSON line per request with its request id.
func requestLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			// The id is also the events' causation_id: a caller can quote it.
			ww.Header().Set("X-Request-Id", middleware.GetReqID(r.Context()))
			start := time.Now()
			next.ServeHTTP(ww, r)
			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" {
				route = "unmatched" // a label per unknown path would grow without bound
			}
			metrics.HTTPRequests.WithLabelValues(route, r.Method, statusLabel(ww.Status())).Inc()
			metrics.HTTPDuration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
			log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("request_id", middleware.GetReqID(r.Context())),
				slog.String("method", r.Method), slog.String("route", route),
				slog.Int("status", ww.Status()), slog.Duration("duration", time.Since(start)))
		})
	}
}

// noSniffNoStore keeps browsers from reading any answer as another type
// than it says, and every cache from keeping an answer under /v1: orders,
// inventory, audit, dashboard and whoami all hold customer or operator
// data. A handler may still set its own Cache-Control after this.
func noSniffNoStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/metrics" {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic in a handler into a logged 500 problem.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.ErrorContext(r.Context(), "panic in handler", "panic", v, "request_id", middleware.GetReqID(r.Context()))
					httpx.WriteProblem(w, httpx.NewProblem(http.StatusInternalServerError, "internal", "internal error"))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
