package eventstore_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

func TestStreamIsReplicatedThreeTimesOnAThreeNodeCluster(t *testing.T) {
	urls := testnats.StartCluster(t, 3)
	ctx := context.Background()
	nc, closeNATS, err := eventstore.Connect(ctx, eventstore.ConnectOptions{URL: urls, Name: "cluster-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNATS()
	s, err := eventstore.Open(ctx, nc, eventstore.Options{Shards: testnats.Shards()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, s.Stream(0))
	if err != nil {
		t.Fatal(err)
	}
	if r := st.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("stream has %d replicas on a 3-node cluster, want 3", r)
	}
	repo := eventstore.NewRepository(s, tallyKind, 10)
	for i := range 3 {
		res, err := repo.Update(ctx, "replicated", eventstore.UpdateOptions[tally]{CommandID: string(rune('a' + i))}, note("x"))
		if err != nil || res.After.Version != uint64(i+1) {
			t.Fatalf("append %d on the cluster: version %d, %v", i, res.After.Version, err)
		}
	}
	if n := len(history(t, s, "orders.replicated")); n != 3 {
		t.Errorf("history holds %d events, want 3", n)
	}
}
