package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// SnapshotWrites counts aggregate snapshots handed to the background
	// writer, by aggregate type and result: stored, failed (the store did
	// not take it), too_large (over the server's payload limit), dropped
	// (the writer's queue was full).
	SnapshotWrites = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "engine_snapshot_writes_total",
		Help: "Aggregate snapshots written in the background, by aggregate type and result (stored, failed, too_large, dropped).",
	}, []string{"aggregate", "result"})

	// SnapshotLoads counts cold loads that looked for a stored snapshot,
	// by aggregate type and result: used, missing, or ignored (it did not
	// match the events, or was written by another state format).
	SnapshotLoads = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "engine_snapshot_loads_total",
		Help: "Cold loads that looked for a stored snapshot, by aggregate type and result (used, missing, ignored).",
	}, []string{"aggregate", "result"})
)
