package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderengine/engine/internal/host"
)

func TestHumanWritesWholeNumbersAsIntegers(t *testing.T) {
	t.Parallel()
	for v, want := range map[float64]string{0: "0", 35: "35", 99: "99", 2.5: "2.50", 0.126: "0.13",
		99.99: "99.99", 100: "100", 1234567.4: "1,234,567"} {
		if got := human(v); got != want {
			t.Errorf("human(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestProgressWritesPlainLinesWhenNotOnATerminal(t *testing.T) {
	t.Parallel()
	// A file, as when stderr is redirected to a log.
	f, err := os.Create(filepath.Join(t.TempDir(), "bench.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if host.IsTerminal(f) {
		t.Fatal("a regular file counts as a terminal")
	}
	var buf bytes.Buffer
	var n atomic.Int64
	n.Store(35)
	for _, w := range []struct {
		name string
		out  interface{ Write([]byte) (int, error) }
	}{{"file", f}, {"buffer", &buf}} {
		stop := progress(w.out, "flash-sale: engine", "outcomes", &n, 100, 0)
		time.Sleep(300 * time.Millisecond) // past a terminal's 200 ms tick
		stop()
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"file": string(data), "buffer": buf.String()} {
		if strings.Contains(out, "\r") {
			t.Errorf("%s: progress wrote a carriage return: %q", name, out)
		}
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
			t.Errorf("%s: want one plain line with 35 outcomes, got %q", name, out)
		}
		if !strings.Contains(out, " 35 outcomes ") {
			t.Errorf("%s: the count is not an integer: %q", name, out)
		}
	}
}
