package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
)

func TestExportWritesEveryEventInStoreOrder(t *testing.T) {
	e := newAPIEnv(t)
	e.setOnHand(t, "EXP", 10)
	for range 3 {
		if _, err := e.app.PlaceOrder(context.Background(), commands.Meta{CommandID: e.app.NewID()},
			commands.PlaceOrder{CustomerID: "x", Currency: "USD", Lines: []domain.Line{{SKU: "EXP", Qty: 1, UnitPriceCents: 5}}}); err != nil {
			t.Fatal(err)
		}
	}
	want := e.subjectMsgs(t, "orders.*") + e.subjectMsgs(t, "inventory.*")
	out := filepath.Join(t.TempDir(), "events.ndjson")
	env := map[string]string{"NATS_URL": e.ns.ClientURL(), "ENGINE_DATA_DIR": t.TempDir()}
	stderr := &syncBuffer{}
	if err := run(context.Background(), []string{"export", "-o", out}, func(k string) string { return env[k] }, &syncBuffer{}, stderr); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	// Global order: every shard's lines in its stream order (the merge of
	// the shards by stored time is eventstore's TestExportMergesShardsByStoredTime).
	var n uint64
	last := map[float64]float64{} // shard → last seq
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		shard, _ := l["shard"].(float64) // absent: shard 0
		if seq := l["seq"].(float64); seq <= last[shard] {
			t.Errorf("line %d out of store order", n+1)
		} else {
			last[shard] = seq
		}
		n++
	}
	if n != want {
		t.Errorf("exported %d lines, the store holds %d events", n, want)
	}
	if err := run(context.Background(), []string{"export", "-from-seq", "5", "-to-seq", "4"}, func(k string) string { return env[k] }, &syncBuffer{}, &syncBuffer{}); err == nil {
		t.Error("an empty range was accepted")
	}
}
