package bench

import (
	"math"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want cpuReading
	}{
		{"with guests", "cpu  100 5 50 800 30 2 3 10 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 1 2 3 4 5 6 7 8 0 0\nintr 5\n",
			cpuReading{busy: 160, steal: 10, total: 1000, cores: 2, ok: true}},
		{"without guests", "cpu 1 0 1 8 0 0 0 0\ncpu0 1 0 1 8 0 0 0 0", cpuReading{busy: 2, steal: 0, total: 10, cores: 1, ok: true}},
		{"no per-core lines", "cpu 1 0 1 8 0 0 0 0\nintr 5\n", cpuReading{}},
		{"too short", "cpu 1 2 3\n", cpuReading{}},
		{"not the summed line", "cpu0 1 0 1 8 0 0 0 0\n", cpuReading{}},
		{"not a number", "cpu 1 x 1 8 0 0 0 0\n", cpuReading{}},
		{"empty", "", cpuReading{}},
	} {
		if got := parseProcStat([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestMsPerCountsEveryCore(t *testing.T) {
	u := cpuUse{busyShare: 0.5, secs: 2, cores: 4, ok: true}
	// Half of 4 cores for 2 s is 4 core-seconds; over 1,000 units that is
	// 4 core-milliseconds each.
	if got, want := u.msPer(1000), 4.0; math.Abs(got-want) > 1e-9 {
		t.Errorf("msPer: %v, want %v", got, want)
	}
	if got := (cpuUse{busyShare: 1, secs: 1, cores: 2, ok: true}).msPer(0); math.IsInf(got, 0) || math.IsNaN(got) {
		t.Errorf("msPer of no units: %v, want a finite figure", got)
	}
}
