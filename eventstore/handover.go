package eventstore

import "time"

// How soon the reservation flow of a dead engine process is taken over by
// another one on the same NATS. Nothing tells JetStream that a process
// died: it finds out when the process stops pulling and stops
// acknowledging, so these two timings bound the hand-over (issue: at most
// 5 s). A live process keeps its batch however long it takes to handle,
// by reporting it in progress (consumeLoop), and keeps its pin by pulling
// again at least every second while idle (pullBatch).
const (
	// HandOverAckWait is the ack wait of the reservation partitions and of
	// the order saga: a batch held by a process that died is delivered
	// again at most this long after the process last reported it.
	HandOverAckWait = 3 * time.Second
	// HandOverPinnedTTL is how long a partition stays pinned to a processor
	// that stopped pulling before another processor is pinned. A live
	// processor whose batch takes longer loses the pin too; that is safe
	// (the SKU's expected sequence and the ack-floor re-read of
	// ConsumeReservations keep the decisions exact and in order), only
	// slower.
	HandOverPinnedTTL = 3 * time.Second
)
