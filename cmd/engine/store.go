package main

import (
	"context"

	"github.com/orderengine/engine/eventstore"
)

// openStore connects to the event store as configured (NATS_URL, or an
// embedded server under ENGINE_DATA_DIR) and opens it; closeStore stops the
// committer, then drains NATS and stops the embedded server.
func openStore(ctx context.Context, cfg config, name string) (store *eventstore.Store, closeStore func(), err error) {
	nc, closeNATS, err := eventstore.Connect(ctx, eventstore.ConnectOptions{URL: cfg.NATSURL, DataDir: cfg.DataDir, Name: name, Extra: cfg.NATSAuth.options(),
		Listen: cfg.Feed.Listen, Feed: cfg.Feed.Reader})
	if err != nil {
		return nil, nil, err
	}
	store, err = eventstore.Open(ctx, nc, eventstore.Options{Shards: cfg.EventShards, Linger: cfg.CommitLinger, MaxBatch: cfg.CommitMaxBatch})
	if err != nil {
		closeNATS()
		return nil, nil, err
	}
	return store, func() { store.Close(); closeNATS() }, nil
}
