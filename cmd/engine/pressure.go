package main

import (
	"time"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/eventstore"
)

// expiryBehind is how late after their dues expiries may start before the
// expiry worker counts as running behind. A worker keeping up starts each
// one within a few milliseconds of its due.
const expiryBehind = time.Second

// writePathBehind returns what tells the integration feed's forwarder to
// leave the machine to the write path: while some reservation partition's
// backlog reaches a quarter of its limit (commands.Backlog.Pressed), or
// this process's expiries start more than a second after their dues. In a
// long sale on two cores the forwarder's reads, translations and the feed
// stream's own writes tipped the engine over: with them an 800 orders/s
// soak refused orders for a full reservation backlog after 145 s, without
// them the same 150 s held (BENCHMARKS.md, "The long sale on a slow day").
func writePathBehind(app *commands.App, store *eventstore.Store) func() bool {
	return func() bool {
		return app.Backlog.Pressed() || store.ExpiryLate() > expiryBehind
	}
}
