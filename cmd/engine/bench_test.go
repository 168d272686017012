package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderengine/engine/internal/bench"
	"github.com/orderengine/engine/internal/pglocal"
)

// benchDoc is engine bench's -json output, as a reader decodes it.
type benchDoc struct {
	Command string        `json:"command"`
	Machine bench.Machine `json:"machine"`
	// Scenarios' entries keep their raw form so the test sees missing keys.
	Scenarios []map[string]json.RawMessage `json:"scenarios"`
}

// mayBeZero says whether a measured figure can be 0: a projection that
// kept up has no lag, an engine that kept up left no order unsent, and a
// host that took no CPU from this VM stole none (CI failed once on a
// steal of 0.00%).
func mayBeZero(metric string) bool {
	for _, s := range []string{"lag", "not sent", "steal"} {
		if strings.Contains(metric, s) {
			return true
		}
	}
	return false
}

// TestBenchRunsEveryScenario runs `engine bench --scenario all` at a tiny
// scale on real engines and a real Postgres: every scenario must report
// its figures with its baseline and their ratio, the flash sale must sell
// exactly its stock (the bench fails itself on any oversell), and the JSON
// must describe the machine. It checks what was measured and how it is
// reported, never how fast.
func TestBenchRunsEveryScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five engines")
	}
	out := filepath.Join(t.TempDir(), "bench.json")
	env := map[string]string{"DATABASE_URL": pglocal.ForTest(t)}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "--scenario", "all", "--json", out,
		"--place-duration", "1s", "--place-concurrency", "8", "--place-skus", "4",
		"--flash-stock", "50", "--flash-orders", "200", "--flash-concurrency", "16",
		"--drain-backlog", "400", "--rebuild-events", "2000",
		"--e2e-rate", "100", "--e2e-duration", "1s"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("engine bench: %v\nstderr:\n%s", err, tailOf(stderr.String(), 3000))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc benchDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	if m := doc.Machine; m.Cores <= 0 || m.Go == "" || m.NATSServer == "" || m.Postgres == "" || m.MemoryGiB <= 0 {
		t.Errorf("machine %+v: want cores, memory, Go, nats-server and Postgres versions", m)
	}
	ratios := map[string]int{}
	confirmed := -1.0
	for _, s := range doc.Scenarios {
		var name, metric string
		var value float64
		for key, dst := range map[string]any{"name": &name, "metric": &metric, "value": &value} {
			if err := json.Unmarshal(s[key], dst); err != nil {
				t.Fatalf("entry %s: %s: %v", mustJSON(s), key, err)
			}
		}
		if value < 0 || math.IsNaN(value) || (value == 0 && !mayBeZero(metric)) {
			t.Errorf("%s %q = %v: want a measured value", name, metric, value)
		}
		if metric == "orders confirmed (must equal stock)" {
			confirmed = value
		}
		if s["ratio"] == nil {
			continue
		}
		var base struct{ Name string }
		var baseValue struct{ Value float64 }
		var ratio float64
		_ = json.Unmarshal(s["baseline"], &base)
		_ = json.Unmarshal(s["baseline"], &baseValue)
		_ = json.Unmarshal(s["ratio"], &ratio)
		if base.Name == "" || baseValue.Value <= 0 || math.Abs(ratio-value/baseValue.Value) > 1e-9*max(1, ratio) {
			t.Errorf("%s %q: baseline %s, ratio %v: want a named baseline and value ÷ baseline", name, metric, s["baseline"], ratio)
		}
		ratios[name]++
	}
	for _, name := range bench.Scenarios {
		if name != "e2e" && ratios[name] == 0 {
			t.Errorf("scenario %s reported no ratio against a baseline", name)
		}
	}
	for _, want := range []string{`"orders confirmed (must equal stock)"`, `"order→visible in read model p99"`, `"POST latency p99"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the JSON has no %s", want)
		}
	}
	if confirmed != 50 {
		t.Errorf("the flash sale confirmed %v orders, want exactly its 50 units", confirmed)
	}
	table := stdout.String()
	for _, name := range bench.Scenarios {
		if !strings.Contains(table, "\n"+name+" ") {
			t.Errorf("the table has no row for %s:\n%s", name, table)
		}
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--flash-stock", "10", "--flash-orders", "5"},
		{"--rebuild-events", "0"},
		{"--place-duration", "-1s"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"bench"}, args...), func(string) string { return "" }, &stdout, &stderr)
		if err == nil {
			t.Errorf("engine bench %v: no error", args)
		}
	}
}

func mustJSON(v any) string { data, _ := json.Marshal(v); return string(data) }

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
