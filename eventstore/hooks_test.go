package eventstore

// ConsumeLoop lets the external tests drive the loop every consumer of the
// reservation flow shares.
var ConsumeLoop = consumeLoop
