package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/testnats"
)

// tally is a deliberately small aggregate for exercising the store itself:
// the domain's own aggregates are tested through the same code in commands.
type tally struct {
	Count int
	Notes []string
}

type noted struct {
	Note string    `json:"note"`
	At   time.Time `json:"at"`
}

var tallyKind = eventstore.Kind[tally, noted]{
	Name: "tally", Prefix: eventstore.OrderSubjects, SchemaVersion: 1,
	Evolve: func(s tally, e noted) tally {
		return tally{Count: s.Count + 1, Notes: append(append([]string(nil), s.Notes...), e.Note)}
	},
	Encode: func(e noted) (string, []byte, error) {
		b, err := json.Marshal(e)
		return "Noted", b, err
	},
	Decode: func(typ string, _ int, data []byte) (noted, error) {
		var e noted
		if typ != "Noted" {
			return e, errors.Newf("unknown type %s", typ)
		}
		return e, json.Unmarshal(data, &e)
	},
	OccurredAt: func(e noted) time.Time { return e.At },
}

func openStore(t *testing.T, nc *nats.Conn) *eventstore.Store {
	t.Helper()
	return enginetest.OpenStore(t, nc)
}

// locate returns the stream and stored subject of a logical subject whose
// last token is an aggregate id (orders.<id>, expire.<id>…): on its shard.
func locate(s *eventstore.Store, subject string) (stream, stored string) {
	return s.Locate(s.ShardOf(subject[strings.LastIndexByte(subject, '.')+1:]), subject)
}

func note(n string) func(eventstore.Snapshot[tally]) ([]noted, error) {
	return func(eventstore.Snapshot[tally]) ([]noted, error) {
		return []noted{{Note: n, At: time.Unix(1700000000, 0).UTC()}}, nil
	}
}

// history returns every envelope of one subject and checks the chain.
func history(t *testing.T, s *eventstore.Store, subject string) []eventstore.Envelope {
	t.Helper()
	var envs []eventstore.Envelope
	err := s.History(context.Background(), subject, func(_ uint64, e eventstore.Envelope) error {
		var prev *eventstore.Envelope
		if len(envs) > 0 {
			prev = &envs[len(envs)-1]
		}
		if err := eventstore.CheckLink(prev, &e); err != nil {
			t.Errorf("%s version %d: %v", subject, e.Version, err)
		}
		envs = append(envs, e)
		return nil
	})
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("history of %s: %v", subject, err)
	}
	return envs
}

func TestConcurrentAppendsToOneAggregateLoseNothing(t *testing.T) {
	ns, nc := testnats.Start(t)
	// Two stores on two connections behave like two engine processes: each
	// has its own cache and its own in-process lock, so only the expected
	// sequence stands between them.
	stores := []*eventstore.Store{openStore(t, nc), openStore(t, testnats.Connect(t, ns))}
	repos := []*eventstore.Repository[tally, noted]{
		eventstore.NewRepository(stores[0], tallyKind, 100),
		eventstore.NewRepository(stores[1], tallyKind, 100),
	}
	const writers = 50
	var wg sync.WaitGroup
	conflicts := make([]int, writers)
	for i := range writers {
		wg.Go(func() {
			repo := repos[i%2]
			for {
				_, err := repo.Update(context.Background(), "hot", eventstore.UpdateOptions[tally]{
					CommandID: fmt.Sprintf("writer-%d", i), MaxAttempts: 1,
				}, note(fmt.Sprintf("w%d", i)))
				if errors.Is(err, domain.ErrConflict) {
					conflicts[i]++
					continue
				}
				if err != nil {
					t.Errorf("writer %d: %v", i, err)
				}
				return
			}
		})
	}
	wg.Wait()

	envs := history(t, stores[0], "orders.hot")
	if len(envs) != writers {
		t.Fatalf("stored %d events, want %d", len(envs), writers)
	}
	seen := map[string]int{}
	for i, e := range envs {
		if e.Version != uint64(i+1) {
			t.Errorf("event %d has version %d", i, e.Version)
		}
		var n noted
		_ = json.Unmarshal(e.Data, &n)
		seen[n.Note]++
	}
	for i := range writers {
		if c := seen[fmt.Sprintf("w%d", i)]; c != 1 {
			t.Errorf("writer %d stored %d times", i, c)
		}
	}
	total := 0
	for _, c := range conflicts {
		total += c
	}
	t.Logf("%d optimistic-concurrency conflicts retried", total)
	for _, r := range repos {
		snap, err := r.Load(context.Background(), "hot")
		if err != nil || snap.Version != writers || snap.State.Count != writers {
			t.Errorf("load: version %d count %d err %v", snap.Version, snap.State.Count, err)
		}
	}
}

func TestRepublishedCommandIsStoredOnce(t *testing.T) {
	_, nc := testnats.Start(t)
	s := openStore(t, nc)
	ctx := context.Background()
	first := eventstore.NewRepository(s, tallyKind, 100)
	if _, err := first.Update(ctx, "a1", eventstore.UpdateOptions[tally]{CommandID: "cmd-1"}, note("x")); err != nil {
		t.Fatal(err)
	}
	// A second process that did not see the first append's acknowledgement
	// retries the same command against the state it now loads: same
	// Nats-Msg-Id, so JetStream stores nothing new.
	second := eventstore.NewRepository(s, tallyKind, 100)
	res, err := second.Update(ctx, "a1", eventstore.UpdateOptions[tally]{CommandID: "cmd-1"}, note("x"))
	if err != nil {
		t.Fatal(err)
	}
	if res.After.Version != 1 {
		t.Errorf("after the retry the aggregate is at version %d, want 1", res.After.Version)
	}
	if n := len(history(t, s, "orders.a1")); n != 1 {
		t.Errorf("stored %d events, want 1", n)
	}

	// The same holds for a raw re-publish of a multi-event batch.
	rawStream, rawSubject := locate(s, "orders.raw")
	msg := func(i int) *nats.Msg {
		m := nats.NewMsg(rawSubject)
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("raw:%d", i))
		m.Data = []byte(`{}`)
		return m
	}
	js, _ := jetstream.New(nc)
	for range 2 {
		if _, err := js.PublishMsg(ctx, msg(0)); err != nil {
			t.Fatal(err)
		}
	}
	info, err := js.Stream(ctx, rawStream)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := info.Info(ctx, jetstream.WithSubjectFilter(rawSubject))
	if got := sub.State.Subjects[rawSubject]; got != 1 {
		t.Errorf("raw re-publish stored %d messages, want 1", got)
	}
}

func TestMultiEventAppendIsAllOrNothing(t *testing.T) {
	_, nc := testnats.Start(t)
	s := openStore(t, nc)
	ctx := context.Background()
	repo := eventstore.NewRepository(s, tallyKind, 100)
	three := func(eventstore.Snapshot[tally]) ([]noted, error) {
		at := time.Unix(1700000000, 0).UTC()
		return []noted{{"a", at}, {"b", at}, {"c", at}}, nil
	}
	res, err := repo.Update(ctx, "m1", eventstore.UpdateOptions[tally]{CommandID: "c1"}, three)
	if err != nil || res.After.Version != 3 {
		t.Fatalf("first append: version %d, err %v", res.After.Version, err)
	}
	// Another process appends behind this repository's back, so its cached
	// snapshot is stale; with one attempt allowed the three events must all
	// be refused, none stored.
	other := eventstore.NewRepository(s, tallyKind, 100)
	if _, err := other.Update(ctx, "m1", eventstore.UpdateOptions[tally]{CommandID: "c2"}, note("d")); err != nil {
		t.Fatal(err)
	}
	_, err = repo.Update(ctx, "m1", eventstore.UpdateOptions[tally]{CommandID: "c3", MaxAttempts: 1}, three)
	if !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("stale multi-event append: got %v, want ErrConflict", err)
	}
	envs := history(t, s, "orders.m1")
	if len(envs) != 4 {
		t.Fatalf("stored %d events, want 4 (3 + 1, nothing of the refused batch)", len(envs))
	}
	// With retries allowed the command is decided again on fresh state.
	res, err = repo.Update(ctx, "m1", eventstore.UpdateOptions[tally]{CommandID: "c4"}, three)
	if err != nil || res.After.Version != 7 {
		t.Fatalf("retried append: version %d, err %v", res.After.Version, err)
	}
	history(t, s, "orders.m1")
}

func TestGroupCommitAnswersEveryAppenderCorrectly(t *testing.T) {
	_, nc := testnats.Start(t)
	s := openStore(t, nc)
	repo := eventstore.NewRepository(s, tallyKind, 10000)
	const appenders, rounds = 64, 10
	var wg sync.WaitGroup
	for i := range appenders {
		wg.Go(func() {
			for r := range rounds {
				res, err := repo.Update(context.Background(), fmt.Sprintf("g%d", i), eventstore.UpdateOptions[tally]{
					CommandID: fmt.Sprintf("g%d-%d", i, r),
				}, note(fmt.Sprint(r)))
				if err != nil {
					t.Errorf("appender %d round %d: %v", i, r, err)
					return
				}
				if res.After.Version != uint64(r+1) {
					t.Errorf("appender %d round %d: version %d", i, r, res.After.Version)
				}
			}
		})
	}
	wg.Wait()
	fresh := eventstore.NewRepository(s, tallyKind, 10)
	for i := range appenders {
		id := fmt.Sprintf("g%d", i)
		envs := history(t, s, "orders."+id)
		snap, err := fresh.Load(context.Background(), id)
		if err != nil || len(envs) != rounds || snap.Version != rounds || snap.LastSeq == 0 {
			t.Errorf("%s: %d events, version %d, err %v", id, len(envs), snap.Version, err)
		}
	}
}

func TestLoadReadsOnlyTheTailAndCreatesNoConsumer(t *testing.T) {
	_, nc := testnats.Start(t)
	s := openStore(t, nc)
	ctx := context.Background()
	writer := eventstore.NewRepository(s, tallyKind, 10)
	reader := eventstore.NewRepository(s, tallyKind, 10)
	for i := range 600 { // more than one direct-get page
		if _, err := writer.Update(ctx, "long", eventstore.UpdateOptions[tally]{CommandID: fmt.Sprint("l", i)}, note(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if i == 299 || i == 598 || i == 599 {
			snap, err := reader.Load(ctx, "long")
			if err != nil || snap.Version != uint64(i+1) || len(snap.State.Notes) != i+1 {
				t.Fatalf("load after %d: version %d err %v", i+1, snap.Version, err)
			}
		}
	}
	js, _ := jetstream.New(nc)
	for k := range s.Shards() {
		st, _ := js.Stream(ctx, s.Stream(k))
		info, _ := st.Info(ctx)
		if info.State.Consumers != 0 {
			t.Errorf("loading created %d consumers on shard %d", info.State.Consumers, k)
		}
	}
}

// TestOpenRepairsTheStreamAndOtherwiseLeavesItAlone: a stream created with
// settings the engine does not rely on is brought in line, and opening it
// again changes nothing.
func TestOpenRepairsTheStreamAndOtherwiseLeavesItAlone(t *testing.T) {
	_, nc := testnats.Start(t)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"orders.*"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	open := func() {
		t.Helper()
		store, err := eventstore.Open(ctx, nc, eventstore.Options{Shards: testnats.Shards()})
		if err != nil {
			t.Fatal(err)
		}
		store.Close()
	}
	open()
	stream, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	if len(cfg.Subjects) != 7 || !cfg.AllowAtomicPublish || !cfg.AllowDirect || !cfg.AllowMsgSchedules {
		t.Errorf("stream not repaired: subjects %v atomic %v direct %v schedules %v", cfg.Subjects, cfg.AllowAtomicPublish, cfg.AllowDirect, cfg.AllowMsgSchedules)
	}
	// The second open must not update: the first update advisory seen after
	// it is the marker update made here.
	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	open()
	cfg.Description = "marker"
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := updates.NextMsg(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if stream, err = js.Stream(ctx, "EVENTS"); err != nil || stream.CachedInfo().Config.Description != "marker" {
		t.Fatalf("marker update not applied: %v", err)
	}
	if m, err := updates.NextMsg(100 * time.Millisecond); err == nil {
		t.Errorf("two stream updates after the second open: %s", m.Data)
	}
}

// TestAppendsRacingCloseAllReturn: commands appended while the store is
// closing are either stored or refused as unavailable, and every caller
// gets its answer: none is left waiting for a committer that is gone.
func TestAppendsRacingCloseAllReturn(t *testing.T) {
	_, nc := testnats.Start(t)
	for round := range 20 {
		s, err := eventstore.Open(context.Background(), nc, eventstore.Options{Shards: testnats.Shards()})
		if err != nil {
			t.Fatal(err)
		}
		repo := eventstore.NewRepository(s, tallyKind, 100)
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Go(func() {
				for r := 0; ; r++ {
					_, err := repo.Update(context.Background(), fmt.Sprintf("c%d-%d", round, i), eventstore.UpdateOptions[tally]{
						CommandID: fmt.Sprintf("c%d-%d-%d", round, i, r),
					}, note(fmt.Sprint(r)))
					if err != nil {
						if !errors.Is(err, domain.ErrUnavailable) {
							t.Errorf("append racing close: %v, want unavailable", err)
						}
						return
					}
				}
			})
		}
		time.Sleep(20 * time.Millisecond)
		s.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: appenders still waiting 30 s after the store closed", round)
		}
	}
}
