package eventstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// TestLegacyStoreOpensInOneShardMode: a store written by the engine before
// sharding (one stream EVENTS, unprefixed subjects) opens in one-shard mode
// whatever Options.Shards asks, and keeps loading and appending there.
func TestLegacyStoreOpensInOneShardMode(t *testing.T) {
	_, nc := testnats.Start(t)
	ctx := context.Background()
	old, err := eventstore.Open(ctx, nc, eventstore.Options{Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	repo := eventstore.NewRepository(old, tallyKind, 10)
	for i := range 3 {
		if _, err := repo.Update(ctx, fmt.Sprint("agg-", i), eventstore.UpdateOptions[tally]{CommandID: fmt.Sprint("old-", i)}, note("before")); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	s, err := eventstore.Open(ctx, nc, eventstore.Options{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Shards() != 1 || s.Stream(0) != "EVENTS" {
		t.Fatalf("opened %d shards, stream %s; want one-shard mode on EVENTS", s.Shards(), s.Stream(0))
	}
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(ctx, "EVENTS_S0"); err == nil {
		t.Error("a shard stream was created beside the legacy one")
	}
	repo = eventstore.NewRepository(s, tallyKind, 10)
	for i := range 3 {
		id := fmt.Sprint("agg-", i)
		res, err := repo.Update(ctx, id, eventstore.UpdateOptions[tally]{CommandID: fmt.Sprint("new-", i)}, note("after"))
		if err != nil {
			t.Fatal(err)
		}
		if res.After.Version != 2 || !slices.Equal(res.After.State.Notes, []string{"before", "after"}) {
			t.Errorf("%s after the reopen: version %d notes %v", id, res.After.Version, res.After.State.Notes)
		}
		if stream, subject := s.Locate(s.ShardOf(id), "orders."+id); stream != "EVENTS" || subject != "orders."+id {
			t.Errorf("%s located on %s %s", id, stream, subject)
		}
	}
	var n int
	if err := s.Export(ctx, 0, 0, func(pos eventstore.Position, _ string, _ eventstore.Envelope) error {
		n++
		if pos.Shard != 0 || pos.Seq != uint64(n) {
			t.Errorf("export line %d at %+v", n, pos)
		}
		return nil
	}); err != nil || n != 6 {
		t.Errorf("exported %d events (%v), want 6", n, err)
	}
}

// TestShardedStoreKeepsItsShardCount: a store created with N shards opens
// with N later whatever is asked, since another count would move
// aggregates to other shards; each shard has a stream of its own with
// prefixed subjects.
func TestShardedStoreKeepsItsShardCount(t *testing.T) {
	_, nc := testnats.Start(t)
	ctx := context.Background()
	s, err := eventstore.Open(ctx, nc, eventstore.Options{Shards: 3})
	if err != nil {
		t.Fatal(err)
	}
	repo := eventstore.NewRepository(s, tallyKind, 10)
	ids := map[int]string{}
	for i := 0; len(ids) < 3; i++ {
		id := fmt.Sprint("agg-", i)
		ids[s.ShardOf(id)] = id
		if _, err := repo.Update(ctx, id, eventstore.UpdateOptions[tally]{CommandID: "c-" + id}, note(id)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for _, asked := range []int{1, 0, 5} {
		t.Run(fmt.Sprint("asked ", asked), func(t *testing.T) {
			s, err := eventstore.Open(ctx, nc, eventstore.Options{Shards: asked})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Shards() != 3 {
				t.Fatalf("%d shards, want 3", s.Shards())
			}
			js, _ := jetstream.New(nc)
			for k, id := range ids {
				stream, subject := s.Locate(k, "orders."+id)
				if stream != fmt.Sprint("EVENTS_S", k) || subject != fmt.Sprintf("s%d.orders.%s", k, id) {
					t.Errorf("shard %d located as %s %s", k, stream, subject)
				}
				st, err := js.Stream(ctx, stream)
				if err != nil {
					t.Fatal(err)
				}
				info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
				if err != nil || info.State.Subjects[subject] != 1 {
					t.Errorf("%s holds %v (%v), want one message on %s", stream, info.State.Subjects, err, subject)
				}
				snap, err := eventstore.NewRepository(s, tallyKind, 10).Load(ctx, id)
				if err != nil || snap.Version != 1 {
					t.Errorf("load %s: version %d, %v", id, snap.Version, err)
				}
			}
		})
	}
}

// TestExportMergesShardsByStoredTime: the export's global order is every
// shard's stream order merged by the time each event was stored.
func TestExportMergesShardsByStoredTime(t *testing.T) {
	_, nc := testnats.Start(t)
	ctx := context.Background()
	s, err := eventstore.Open(ctx, nc, eventstore.Options{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	repo := eventstore.NewRepository(s, tallyKind, 10)
	var want []string
	for i := range 24 {
		id := fmt.Sprint("agg-", i%6)
		if _, err := repo.Update(ctx, id, eventstore.UpdateOptions[tally]{CommandID: fmt.Sprint("c-", i)}, note(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint(i))
		time.Sleep(time.Millisecond) // stored times one after the other
	}
	var got []string
	shards := map[int]bool{}
	err = s.Export(ctx, 0, 0, func(pos eventstore.Position, _ string, e eventstore.Envelope) error {
		ev, err := tallyKind.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return err
		}
		got, shards[pos.Shard] = append(got, ev.Note), true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("export order %v, want %v", got, want)
	}
	if len(shards) < 2 {
		t.Errorf("the aggregates all fell on shards %v; the test needs several", shards)
	}
	rep, err := s.VerifyChains(ctx, nil)
	if err != nil || !rep.OK || rep.Aggregates != 6 || rep.EventsChecked != 24 {
		t.Errorf("verify over the shards: %+v, %v", rep, err)
	}
}
