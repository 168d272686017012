package bench

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// cpuReading is the machine's CPU time counters at one moment: the first
// line of /proc/stat, in the kernel's ticks, summed over its cores (as
// many as the "cpuN" lines after it).
type cpuReading struct {
	busy, steal, total uint64
	cores              int
	ok                 bool
}

// readCPU reads /proc/stat; ok is false where there is none (not Linux),
// and the CPU figures are then left out of the report.
func readCPU() cpuReading {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuReading{}
	}
	return parseProcStat(b)
}

// parseProcStat reads the summed "cpu" line that /proc/stat starts with,
// and counts the per-core lines.
func parseProcStat(b []byte) cpuReading {
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	// cpu user nice system idle iowait irq softirq steal [guest guest_nice]
	if len(f) < 9 || string(f[0]) != "cpu" {
		return cpuReading{}
	}
	var v [8]uint64
	for i := range v {
		n, err := strconv.ParseUint(string(f[i+1]), 10, 64)
		if err != nil {
			return cpuReading{}
		}
		v[i] = n
	}
	cores := 0
	for l := range bytes.Lines(rest) {
		if len(l) > 3 && string(l[:3]) == "cpu" && l[3] >= '0' && l[3] <= '9' {
			cores++
		}
	}
	if cores == 0 {
		return cpuReading{}
	}
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	busy := user + nice + system + irq + softirq
	return cpuReading{busy: busy, steal: steal, total: busy + idle + iowait + steal, cores: cores, ok: true}
}

// cpuMark is a reading and when it was taken: the start of a phase.
type cpuMark struct {
	r  cpuReading
	at time.Time
}

func markCPU() cpuMark { return cpuMark{r: readCPU(), at: time.Now()} }

// cpuUse is what the machine's cores did over a phase.
type cpuUse struct {
	// busyShare and stealShare are fractions of all the cores' time.
	busyShare, stealShare float64
	secs                  float64
	cores                 int
	ok                    bool
}

// since is what the cores did from m until now.
func (m cpuMark) since() cpuUse {
	now := readCPU()
	if !m.r.ok || !now.ok || now.total <= m.r.total {
		return cpuUse{}
	}
	t := float64(now.total - m.r.total)
	return cpuUse{busyShare: float64(now.busy-m.r.busy) / t, stealShare: float64(now.steal-m.r.steal) / t,
		secs: time.Since(m.at).Seconds(), cores: now.cores, ok: true}
}

// msPer is the machine's busy CPU time, in milliseconds over every process
// (engine, embedded server, Postgres, the bench's own clients), per unit of
// work done in the phase: what one order costs the machine's cores, where
// a rate also moves with the share of the machine the phase had (steal)
// and with the disk's latency. It is in core-milliseconds, counted from
// the shares so that the kernel's tick rate does not matter.
func (u cpuUse) msPer(units int64) float64 {
	return u.busyShare * float64(u.cores) * u.secs * 1000 / float64(max(units, 1))
}

// addCPU reports what the machine's CPU did per unit of work in a phase
// next to the same for its baseline, and the share of the time the VM's
// host took away (steal) in each; nothing where /proc/stat is missing.
func (b *bencher) addCPU(name, unit string, phase cpuUse, units int64, baseName string, base cpuUse, baseUnits int64) {
	if !phase.ok || !base.ok {
		return
	}
	b.results = append(b.results,
		Result{Name: name, Metric: "machine CPU per " + unit, Value: phase.msPer(units), Unit: "core-ms",
			Baseline: &benchBaseline{Name: baseName, Value: base.msPer(baseUnits)}},
		Result{Name: name, Metric: "machine CPU busy", Value: 100 * phase.busyShare, Unit: "% busy",
			Baseline: &benchBaseline{Name: "baseline's % busy", Value: 100 * base.busyShare}},
		Result{Name: name, Metric: "machine CPU steal", Value: 100 * phase.stealShare, Unit: "% stolen",
			Baseline: &benchBaseline{Name: "baseline's % stolen", Value: 100 * base.stealShare}})
}
