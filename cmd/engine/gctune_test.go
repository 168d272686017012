package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestMemTotal(t *testing.T) {
	for _, tc := range []struct {
		name, meminfo string
		want          int64
	}{
		{"machine", "MemTotal:       24683772 kB\nMemFree:        21709200 kB\n", 24683772 * 1024},
		{"not first", "Foo: 1 kB\nMemTotal: 2048 kB\n", 2048 * 1024},
		{"absent", "MemFree: 1 kB\n", 0},
		{"other unit", "MemTotal: 2048 MB\n", 0},
		{"not a number", "MemTotal: lots kB\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := memTotal([]byte(tc.meminfo)); got != tc.want {
				t.Fatalf("memTotal = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestTuneGC: without GOGC and GOMEMLIMIT in the environment the engine's
// defaults apply; with them, tuneGC changes neither (the Go runtime has
// read them already).
func TestTuneGC(t *testing.T) {
	oldPercent, oldLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })

	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, defaultGCPercent)
	}
	if avail, got := memoryAvailable(), debug.SetMemoryLimit(math.MaxInt64); avail > 0 && got != avail/2 {
		t.Errorf("GOMEMLIMIT unset: limit %d, want half of %d", got, avail)
	}

	env := map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}
	tuneGC(func(k string) string { return env[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: GC percent changed to %d", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set: limit changed to %d", got)
	}
}
