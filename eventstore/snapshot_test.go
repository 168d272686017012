package eventstore_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// tallySnapKind is tallyKind with stored snapshots.
var tallySnapKind = func() eventstore.Kind[tally, noted] {
	k := tallyKind
	k.SnapshotFormat = 1
	return k
}()

// stored mirrors what the snapshots bucket holds for one aggregate.
type stored struct {
	Format   int             `json:"format"`
	Version  uint64          `json:"version"`
	LastSeq  uint64          `json:"last_seq"`
	LastHash string          `json:"last_hash"`
	State    json.RawMessage `json:"state"`
}

func openSnapStore(t testing.TB, nc *nats.Conn, every int) *eventstore.Store {
	t.Helper()
	s, err := eventstore.Open(context.Background(), nc, eventstore.Options{SnapshotEvery: every, Shards: testnats.Shards()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func snapshotBucket(t testing.TB, nc *nats.Conn, s *eventstore.Store) jetstream.KeyValue {
	t.Helper()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(context.Background(), "EVENTS_snapshots")
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// awaitSnapshot waits until the bucket holds a snapshot of key at version
// at least v, and returns it.
func awaitSnapshot(t testing.TB, kv jetstream.KeyValue, key string, v uint64) stored {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s stored
		if e, err := kv.Get(context.Background(), key); err == nil {
			zr, err := gzip.NewReader(bytes.NewReader(e.Value()))
			if err == nil {
				err = json.NewDecoder(zr).Decode(&s)
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Version >= v {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot of %s at version %d (have %d)", key, v, s.Version)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func snapKey(kind, id string) string {
	return kind + "." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func putSnapshot(t *testing.T, kv jetstream.KeyValue, key string, s stored) {
	t.Helper()
	data, _ := json.Marshal(s)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(data)
	_ = zw.Close()
	if _, err := kv.Put(context.Background(), key, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// TestColdLoadReadsTheStoredSnapshotAndItsTail: every 10 events a snapshot
// is stored in the background; a cold load (nothing cached) folds only the
// events after it, which a forged state (with the right version, sequence
// and hash) shows; a snapshot that does not match the event at its
// sequence, or of another format, is ignored for the whole history.
func TestColdLoadReadsTheStoredSnapshotAndItsTail(t *testing.T) {
	_, nc := testnats.Start(t)
	s := openSnapStore(t, nc, 10)
	ctx := context.Background()
	w := eventstore.NewRepository(s, tallySnapKind, 100)
	for i := range 25 {
		if _, err := w.Update(ctx, "long", eventstore.UpdateOptions[tally]{CommandID: fmt.Sprint("c", i)}, note(fmt.Sprint("n", i))); err != nil {
			t.Fatal(err)
		}
	}
	kv := snapshotBucket(t, nc, s)
	key := snapKey("tally", "long")
	snap := awaitSnapshot(t, kv, key, 20)
	if snap.Version != 20 || snap.Format != 1 {
		t.Fatalf("snapshot %+v, want version 20 of format 1", snap)
	}
	want, err := eventstore.NewRepository(s, tallyKind, 100).Load(ctx, "long") // no snapshots: a full replay
	if err != nil || want.State.Count != 25 {
		t.Fatalf("full replay: %+v, %v", want, err)
	}
	cold := func() eventstore.Snapshot[tally] {
		t.Helper()
		got, err := eventstore.NewRepository(s, tallySnapKind, 100).Load(ctx, "long")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := cold(); !reflect.DeepEqual(got, want) {
		t.Fatalf("cold load from the snapshot\n got %+v\nwant %+v", got, want)
	}

	forged := snap
	forged.State = json.RawMessage(`{"Count":1000,"Notes":["forged"]}`)
	putSnapshot(t, kv, key, forged)
	if got := cold(); got.State.Count != 1005 || got.Version != 25 || got.LastHash != want.LastHash {
		t.Fatalf("with a forged state that matches the chain: count %d version %d; want the snapshot and its 5 events", got.State.Count, got.Version)
	}

	for name, bad := range map[string]func(*stored){
		"wrong hash":         func(s *stored) { s.LastHash = want.LastHash },
		"wrong version":      func(s *stored) { s.Version++ },
		"another subject":    func(s *stored) { s.LastSeq-- },
		"past the last":      func(s *stored) { s.LastSeq = want.LastSeq + 1 },
		"another format":     func(s *stored) { s.Format = 2 },
		"unreadable state":   func(s *stored) { s.State = json.RawMessage(`"x"`) },
		"behind the history": func(s *stored) { s.Version, s.LastSeq = 0, 0 },
	} {
		b := forged
		bad(&b)
		putSnapshot(t, kv, key, b)
		if got := cold(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the snapshot was trusted: count %d version %d", name, got.State.Count, got.Version)
		}
	}
	if _, err := kv.Put(ctx, key, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if got := cold(); !reflect.DeepEqual(got, want) {
		t.Errorf("an unreadable snapshot was trusted: %+v", got)
	}
}

// TestSKUSnapshotLoadsLikeAReplay: a SKU with held, released and committed
// reservations over many batches loads from its snapshot exactly as from
// its whole history (the held set survives the JSON round trip), and a long
// history without a snapshot gets one when it is read.
func TestSKUSnapshotLoadsLikeAReplay(t *testing.T) {
	_, nc := testnats.Start(t)
	with, without := openSnapStore(t, nc, 10), openSnapStore(t, nc, -1)
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// Written with snapshots off: a history from before snapshots.
	w := eventstore.NewRepository(without, eventstore.SKUKind, 10)
	set := func(eventstore.Snapshot[domain.SKU]) ([]domain.SKUEvent, error) {
		return []domain.SKUEvent{domain.OnHandSet{SKU: "LONG", OnHand: 1000, At: at}}, nil
	}
	if _, err := w.Update(ctx, "LONG", eventstore.UpdateOptions[domain.SKU]{CommandID: "set"}, set); err != nil {
		t.Fatal(err)
	}
	for b := range 34 {
		var cmds []domain.SKUCommand
		for i := range 10 {
			id := fmt.Sprintf("o%d-%d-LONG", b, i)
			cmds = append(cmds, domain.Reserve{SKU: "LONG", ReservationID: id, OrderID: id, Qty: int64(1 + i%3), At: at})
			if b > 0 && i%3 == 0 {
				prev := fmt.Sprintf("o%d-%d-LONG", b-1, i)
				cmds = append(cmds, domain.Release{SKU: "LONG", ReservationID: prev, At: at})
			}
			if b > 0 && i%3 == 1 {
				prev := fmt.Sprintf("o%d-%d-LONG", b-1, i)
				cmds = append(cmds, domain.CommitReservation{SKU: "LONG", ReservationID: prev, At: at})
			}
		}
		_, err := w.UpdateFolded(ctx, "LONG", eventstore.UpdateOptions[domain.SKU]{CommandID: fmt.Sprint("b", b)},
			func(s eventstore.Snapshot[domain.SKU]) ([]domain.SKUEvent, domain.SKU, error) {
				after, events, _ := domain.DecideReservations(s.State, cmds, 0, uint64(b+1), at)
				return events, after, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	want, err := eventstore.NewRepository(without, eventstore.SKUKind, 10).Load(ctx, "LONG")
	if err != nil || want.Version != 35 || want.State.Held.Len() == 0 {
		t.Fatalf("full replay: version %d, %d held, %v", want.Version, want.State.Held.Len(), err)
	}
	kv := snapshotBucket(t, nc, with)
	key := snapKey("inventory", "LONG")
	if _, err := kv.Get(ctx, key); err == nil {
		t.Fatal("a snapshot was written with snapshots off")
	}
	// The first cold load reads everything and leaves a snapshot behind.
	first, err := eventstore.NewRepository(with, eventstore.SKUKind, 10).Load(ctx, "LONG")
	if err != nil || !reflect.DeepEqual(first, want) {
		t.Fatalf("first cold load: %v\n got %+v\nwant %+v", err, first, want)
	}
	if snap := awaitSnapshot(t, kv, key, 35); snap.LastSeq != want.LastSeq || snap.LastHash != want.LastHash {
		t.Fatalf("snapshot %+v, want the last event's", snap)
	}
	got, err := eventstore.NewRepository(with, eventstore.SKUKind, 10).Load(ctx, "LONG")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("load from the snapshot: %v\n got %+v\nwant %+v", err, got, want)
	}
}
