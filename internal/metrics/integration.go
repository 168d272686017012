package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"
)

// webhookBuckets span a receiver on the same host (milliseconds) to one
// at its request timeout (seconds).
var webhookBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

var (
	// FeedPublished counts integration events published into the feed.
	FeedPublished = promauto.NewCounter(prometheus.CounterOpts{
		Name: "engine_feed_published_total",
		Help: "Integration events published into the feed stream.",
	})

	// FeedPending is how many order events the feed forwarder had still
	// to read when it read the last one, summed over shards: its lag.
	FeedPending = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "engine_feed_pending_events",
		Help: "Order events the feed forwarder has yet to read (its lag).",
	})

	// FeedErrors counts the forwarder's failed rounds (it resumes from the
	// feed's last message after each).
	FeedErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "engine_feed_errors_total",
		Help: "Feed forwarder rounds that failed and were resumed.",
	})

	// FeedYielding is 1 while the forwarder leaves the CPU to the write
	// path (feed.Forwarder.Yield), 0 otherwise.
	FeedYielding = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "engine_feed_yielding",
		Help: "1 while the feed forwarder pauses because the write path runs behind, else 0.",
	})

	// WebhookDeliveries counts webhook delivery outcomes by endpoint id and
	// outcome: delivered, failed (one attempt that will be retried),
	// dead_lettered, parked (held behind an earlier dead letter of the
	// same order), redelivered (a dead letter delivered after all).
	WebhookDeliveries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "engine_webhook_deliveries_total",
		Help: "Webhook delivery outcomes by endpoint and outcome (delivered, failed, dead_lettered, parked, redelivered).",
	}, []string{"endpoint", "outcome"})

	// WebhookAttemptDuration is the time of one delivery attempt.
	WebhookAttemptDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "engine_webhook_attempt_duration_seconds",
		Help:    "Time of one webhook delivery attempt, by endpoint.",
		Buckets: webhookBuckets,
	}, []string{"endpoint"})

	// WebhookFeedPosition is the last feed sequence each endpoint handled;
	// compared with the feed's head it shows an endpoint falling behind.
	WebhookFeedPosition = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "engine_webhook_feed_position",
		Help: "Last feed sequence handled, by webhook endpoint.",
	}, []string{"endpoint"})
)

// GaugeValue reads g's current value, for engine bench's live figures.
func GaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return 0
	}
	return m.GetGauge().GetValue()
}
