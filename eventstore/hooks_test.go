package eventstore

// ConsumeLoop lets the external tests drive the loop every consumer of the
// reservation flow shares.
var ConsumeLoop = consumeLoop

// PublishAtomic lets the cost benchmarks publish their batches as the
// group committer does.
var PublishAtomic = publishAtomic
