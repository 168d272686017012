package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderengine/engine/internal/bench"
	"github.com/orderengine/engine/internal/pglocal"
)

// TestBenchSoakReleasesEveryGrant runs a short soak on a real engine: every
// unit granted during the sale is released by expiry by the end (nobody
// pays), none is left past its due, and the sample table and the memory
// figures are reported. It checks what was measured, never how fast.
func TestBenchSoakReleasesEveryGrant(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a sale for seconds")
	}
	out := filepath.Join(t.TempDir(), "soak.json")
	env := map[string]string{"DATABASE_URL": pglocal.ForTest(t)}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "--scenario", "soak", "--json", out,
		"--soak-rate", "40", "--soak-duration", "4s", "--soak-ttl", "2s", "--soak-after", "8s",
		"--soak-sample", "1s", "--soak-restock-every", "1s", "--soak-restock", "30"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("engine bench: %v\nstderr:\n%s", err, tailOf(stderr.String(), 3000))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Scenarios []bench.Result `json:"scenarios"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, r := range doc.Scenarios {
		got[r.Metric] = r.Value
	}
	if got["units granted"] <= 0 || got["units released by expiry"] != got["units granted"] {
		t.Errorf("%v units granted, %v released by expiry: want every grant released", got["units granted"], got["units released by expiry"])
	}
	if got["units past due + 5 s at the end"] != 0 {
		t.Errorf("%v units held past their due + 5 s at the end", got["units past due + 5 s at the end"])
	}
	if got["RSS peak during the load"] <= 0 || got["Go live heap at the end"] <= 0 {
		t.Errorf("memory not measured: %v", got)
	}
	if !strings.Contains(stdout.String(), "| t (s) | RSS (MiB) |") {
		t.Errorf("no sample table:\n%s", stdout.String())
	}
}
