// Package metrics holds the engine's Prometheus metrics, registered on the
// default registry next to the Go runtime and process collectors that
// client_golang registers there, and served at /metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// latencyBuckets spans a cached read (sub-millisecond) to a command stuck
// behind a slow disk (seconds).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

var (
	// HTTPRequests counts answered requests by route pattern, method and
	// status code.
	HTTPRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "engine_http_requests_total",
		Help: "HTTP requests answered, by route pattern, method and status code.",
	}, []string{"route", "method", "status"})

	// HTTPDuration is the time to answer, by route pattern and method.
	HTTPDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "engine_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route pattern and method.",
		Buckets: latencyBuckets,
	}, []string{"route", "method"})

	// Commands counts command outcomes by command and outcome: "ok",
	// "replayed" (idempotent replay), or the problem code of a refusal or
	// failure ("invalid_transition", "unavailable", ...).
	Commands = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "engine_commands_total",
		Help: "Commands by command and outcome (ok, replayed, or the problem code).",
	}, []string{"command", "outcome"})

	// IdempotentReplays counts answers replayed from an idempotency record.
	IdempotentReplays = promauto.NewCounter(prometheus.CounterOpts{
		Name: "engine_idempotent_replays_total",
		Help: "Command answers replayed from an Idempotency-Key record.",
	})

	// AppendDuration is the time from handing a command's events to the
	// group committer to their durable acknowledgement, by aggregate type.
	AppendDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "engine_append_duration_seconds",
		Help:    "Time to append a command's events durably (group commit included), by aggregate type.",
		Buckets: latencyBuckets,
	}, []string{"aggregate"})

	// AppendConflicts counts appends refused because the aggregate moved on
	// (optimistic concurrency), by aggregate type; the command is retried.
	AppendConflicts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "engine_append_conflicts_total",
		Help: "Appends refused by optimistic concurrency (expected last sequence), by aggregate type.",
	}, []string{"aggregate"})

	// ReservationDecisions counts the SKU decisions on reservation
	// requests: reserved, refused, released, committed.
	ReservationDecisions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "engine_reservation_decisions_total",
		Help: "Reservation requests decided, by decision (reserved, refused, released, committed).",
	}, []string{"decision"})

	// OutcomesTold counts the reservation outcomes recorded on orders, by
	// who recorded them: "placement" (in the batch that placed the order,
	// with the SKU's decision: direct placement), "decision" (the
	// processor, in the batch that stored the SKU's decision) or "saga"
	// (the order saga, a batch later).
	OutcomesTold = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "engine_reservation_outcomes_told_total",
		Help: "Reservation outcomes recorded on orders, by path (placement: in the batch that placed the order; decision: in the SKU decision's batch; saga: by the order saga).",
	}, []string{"path"})

	// DirectPlacementsRefused counts the direct placement batches the
	// stream refused (a request of the SKU stored and not yet decided, a
	// keyed order stored already, another engine's update of the SKU):
	// their orders were placed through requests instead.
	DirectPlacementsRefused = promauto.NewCounter(prometheus.CounterOpts{
		Name: "engine_direct_placements_refused_total",
		Help: "Direct placement batches refused by the stream; their orders took the request path.",
	})

	// ReservationBacklog is, per partition, how many reservation requests
	// are stored but not yet decided, as last sampled (commands.Backlog).
	ReservationBacklog = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "engine_reservation_backlog",
		Help: "Reservation requests stored but not yet decided, by partition (summed over shards).",
	}, []string{"partition"})

	// ReservationBacklogLimit is the backlog of one partition past which
	// new orders on its SKUs get 503; 0 when there is no limit.
	ReservationBacklogLimit = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "engine_reservation_backlog_limit",
		Help: "Backlog of one partition past which new orders on its SKUs are refused with 503 (0: no limit).",
	})

	// RateLimited counts requests refused with 429.
	RateLimited = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "engine_rate_limited_total",
		Help: "Requests refused with 429, by reason (token rate, concurrency).",
	}, []string{"reason"})

	// DashboardStreams is how many dashboard event streams are open.
	DashboardStreams = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "engine_dashboard_streams",
		Help: "Dashboard event streams open now.",
	})

	// DashboardStreamDrops counts streams dropped for falling behind.
	DashboardStreamDrops = promauto.NewCounter(prometheus.CounterOpts{
		Name: "engine_dashboard_stream_drops_total",
		Help: "Dashboard event streams dropped because the client did not keep up.",
	})
)
