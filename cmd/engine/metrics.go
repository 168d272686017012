package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/projections"
)

// projectionCollector reports each projection's lag and dead letters at
// scrape time, from the same Status the admin API shows. While a status
// cannot be read (Postgres down), it reports the last values it read with
// engine_projection_status_up at 0: the series an alert watches must not
// vanish exactly when the database it watches does.
type projectionCollector struct {
	runners []*projections.Runner
	log     *slog.Logger
	mu      sync.Mutex
	last    map[string]projections.ProjectionStatus
}

var (
	projectionLagEvents = prometheus.NewDesc("engine_projection_lag_events",
		"Events of the projection's subjects in the stream after its checkpoint.", []string{"projection"}, nil)
	projectionLagSeconds = prometheus.NewDesc("engine_projection_lag_seconds",
		"How long ago the last applied event occurred, while the projection lags; 0 when caught up.", []string{"projection"}, nil)
	projectionCheckpoint = prometheus.NewDesc("engine_projection_checkpoint",
		"Last stream sequence the projection applied.", []string{"projection"}, nil)
	projectionDeadLetters = prometheus.NewDesc("engine_projection_dead_letters",
		"Unresolved dead letters of the projection.", []string{"projection"}, nil)
	projectionStatusUp = prometheus.NewDesc("engine_projection_status_up",
		"1 when the projection's status was read at this scrape; 0 when its database did not answer and the other "+
			"engine_projection_* series repeat the last values read.", []string{"projection"}, nil)
)

func newProjectionCollector(runners []*projections.Runner, log *slog.Logger) *projectionCollector {
	return &projectionCollector{runners: runners, log: log, last: map[string]projections.ProjectionStatus{}}
}

func (c *projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- projectionLagEvents
	ch <- projectionLagSeconds
	ch <- projectionCheckpoint
	ch <- projectionDeadLetters
	ch <- projectionStatusUp
}

func (c *projectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Scrapes may overlap; the cache is read and written under one lock.
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.runners {
		up := 1.0
		s, err := r.Status(ctx)
		if err != nil {
			// A scrape must not fail for a database blip; readyz reports it.
			c.log.Warn("projection status unavailable for metrics", "err", err)
			up = 0
			s = c.last[r.Name()]
			s.Name = r.Name()
		} else {
			c.last[r.Name()] = s
		}
		ch <- prometheus.MustNewConstMetric(projectionStatusUp, prometheus.GaugeValue, up, s.Name)
		if _, seen := c.last[r.Name()]; !seen {
			continue // nothing read yet: no value is better than a made-up 0
		}
		ch <- prometheus.MustNewConstMetric(projectionLagEvents, prometheus.GaugeValue, float64(s.Lag), s.Name)
		ch <- prometheus.MustNewConstMetric(projectionLagSeconds, prometheus.GaugeValue, s.LagSeconds, s.Name)
		ch <- prometheus.MustNewConstMetric(projectionCheckpoint, prometheus.GaugeValue, float64(s.Checkpoint), s.Name)
		ch <- prometheus.MustNewConstMetric(projectionDeadLetters, prometheus.GaugeValue, float64(s.DeadLetters), s.Name)
	}
}

// expiryCollector reports the expiry worker's backlog at scrape time: the
// timers not handled yet, and how late the oldest of them is.
type expiryCollector struct {
	store *eventstore.Store
	log   *slog.Logger
}

var (
	expiryBacklog = prometheus.NewDesc("engine_expiry_timers_pending",
		"Messages the expiry worker has still to pass or handle: the order events from the oldest confirmation not yet due or handled on (confirmations carry their expiry due), and timers of earlier versions.", nil, nil)
	expiryOverdue = prometheus.NewDesc("engine_expiry_overdue_seconds",
		"How far past its due the oldest confirmation or timer not handled yet is (an order event without a due counts from when it was stored); 0 while the expiry worker keeps up.", nil, nil)
)

func (c expiryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- expiryBacklog
	ch <- expiryOverdue
}

func (c expiryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, overdue, err := c.store.ExpiryBacklog(ctx)
	if err != nil {
		// A scrape must not fail for a NATS blip; readyz reports it.
		c.log.Warn("expiry backlog unavailable for metrics", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(expiryBacklog, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(expiryOverdue, prometheus.GaugeValue, overdue.Seconds())
}

// metricsHandler serves the default registry (the engine's metrics, Go
// runtime and process) and this server's projection and expiry collectors.
func metricsHandler(d serverDeps) http.Handler {
	local := prometheus.NewRegistry()
	local.MustRegister(newProjectionCollector(d.runners, d.log))
	if d.store != nil {
		local.MustRegister(expiryCollector{store: d.store, log: d.log})
	}
	return promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, local}, promhttp.HandlerOpts{})
}

// statusLabel is the status code as a metric label.
func statusLabel(code int) string { return strconv.Itoa(code) }
