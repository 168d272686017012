package main

import (
	"bufio"
	"bytes"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is GOGC for an engine whose environment does not set
// it. The live heap of a loaded engine is mostly nats-server's per-subject
// state, block caches and duplicate window (~450-550 MiB at t=150-300 s of
// an 800 orders/s sale); at Go's default of 100 the collector marked all
// of it every time the heap doubled, and GC took a quarter of the CPU.
// BENCHMARKS.md ("The collector's share") has the measurement that chose it.
const defaultGCPercent = 400

// tuneGC sets the collector for a long-running engine unless the
// environment already does (the Go runtime reads GOGC and GOMEMLIMIT
// itself, and those win): GOGC to defaultGCPercent, and a soft memory limit
// of half the memory this process may use (the machine's, or its cgroup's
// if lower), so that a larger heap target never takes memory the private
// Postgres and the page cache under JetStream's files need. Near the limit
// the collector runs as often as it must, whatever GOGC says.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		if avail := memoryAvailable(); avail > 0 {
			debug.SetMemoryLimit(avail / 2)
		}
	}
}

// memoryAvailable returns the memory this process may use in bytes: the
// lower of the machine's and the cgroup's limit (v2 or v1), or 0 when
// neither can be read.
func memoryAvailable() int64 {
	limit := int64(0)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		limit = memTotal(b)
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) says there is no limit.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	return limit
}

// memTotal reads MemTotal from /proc/meminfo's text, in bytes; 0 if absent.
func memTotal(meminfo []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}
