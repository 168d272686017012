package bench

import (
	"bufio"
	"context"
	"fmt"
	"github.com/orderengine/engine/internal/host"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
)

// Result is one measured figure of a scenario, with the baseline it
// is compared with in the same run, if any.
type Result struct {
	Name     string         `json:"name"`
	Metric   string         `json:"metric"`
	Value    float64        `json:"value"`
	Unit     string         `json:"unit"`
	Baseline *benchBaseline `json:"baseline,omitempty"`
	// Ratio is Value ÷ Baseline.Value for throughputs.
	Ratio *float64 `json:"ratio,omitempty"`
	// Goal is the goal for this figure, GoalMet whether it held.
	Goal    string `json:"goal,omitempty"`
	GoalMet *bool  `json:"goal_met,omitempty"`
}

type benchBaseline struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// add records a figure without a baseline; goal, when not empty, is
// checked by met.
func (b *bencher) add(name, metric string, value float64, unit, goal string, met func(float64) bool) {
	r := Result{Name: name, Metric: metric, Value: value, Unit: unit, Goal: goal}
	if met != nil {
		ok := met(value)
		r.GoalMet = &ok
	}
	b.results = append(b.results, r)
}

// compare records a throughput next to its baseline, with their ratio
// and, when minRatio > 0, whether the ratio reaches it.
func (b *bencher) compare(name, metric string, value float64, unit, baseline string, baseValue, minRatio float64) {
	ratio := 0.0
	if baseValue > 0 {
		ratio = value / baseValue
	}
	r := Result{Name: name, Metric: metric, Value: value, Unit: unit,
		Baseline: &benchBaseline{Name: baseline, Value: baseValue}, Ratio: &ratio}
	if minRatio > 0 {
		ok := ratio >= minRatio
		r.Goal, r.GoalMet = "ratio ≥ "+strconv.FormatFloat(minRatio, 'f', -1, 64), &ok
	}
	b.results = append(b.results, r)
}

// printTable writes every result as a table on stdout.
func (b *bencher) printTable(took time.Duration) {
	w := tabwriter.NewWriter(b.stdout, 2, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "scenario\tmetric\tvalue\tunit\tbaseline\tbaseline value\tratio\tgoal\t")
	for _, r := range b.results {
		base, baseValue, ratio := "", "", ""
		if r.Baseline != nil {
			base, baseValue = r.Baseline.Name, human(r.Baseline.Value)
		}
		if r.Ratio != nil {
			ratio = strconv.FormatFloat(*r.Ratio, 'f', 2, 64) + "x"
		}
		goal := r.Goal
		if r.GoalMet != nil {
			goal += map[bool]string{true: " (met)", false: " (MISSED)"}[*r.GoalMet]
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, r.Metric, human(r.Value), r.Unit, base, baseValue, ratio, goal)
	}
	_ = w.Flush()
	_, _ = fmt.Fprintf(b.stdout, "engine bench: %d scenarios in %s\n", len(b.opts.scenarios), took.Round(time.Second))
}

// human formats v with thousands separators, or two decimals when small
// and not a whole number: 35 outcomes are "35", a rate of 2.5/s "2.50".
func human(v float64) string {
	if v < 100 && v != math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	s := strconv.FormatInt(int64(v+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Machine is the JSON output's description of where it ran.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	MemoryGiB  int    `json:"memory_gib"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	NATSServer string `json:"nats_server"`
	Postgres   string `json:"postgres"`
}

func (b *bencher) machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), NATSServer: server.VERSION, Postgres: b.pgVersion}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.Atoi(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB")); err == nil {
		m.MemoryGiB = (kb + 1<<19) >> 20
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file, empty when absent.
func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func postgresVersion(ctx context.Context, url string) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", errors.Wrap(err, "connect to Postgres")
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var v string
	return v, errors.Wrap(conn.QueryRow(ctx, "SHOW server_version").Scan(&v), "read the Postgres version")
}

// firstError keeps the first error of many goroutines and, when cancel is
// set, cancels their context as it comes, so the others stop.
type firstError struct {
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

func (f *firstError) set(err error) {
	f.once.Do(func() {
		f.err = err
		if f.cancel != nil {
			f.cancel()
		}
	})
}

// percentile returns the p-th percentile (0-100) of sorted d, in ms.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(float64(len(sorted))*p/100))
	return float64(sorted[i].Microseconds()) / 1000
}

// latencies collects durations from many goroutines, one slice each, so
// that recording takes no lock.
type latencies [][]time.Duration

func newLatencies(workers int) latencies { return make(latencies, workers) }

// sorted merges and sorts them.
func (l latencies) sorted() []time.Duration {
	var all []time.Duration
	for _, w := range l {
		all = append(all, w...)
	}
	slices.Sort(all)
	return all
}

// progress shows a phase's progress on one line of w, rewritten every
// 200 ms: a bar (of count against total, or of time against dur when total
// is 0), the elapsed time, the count and its rate. stop ends the line.
// When w is not a terminal (a log file, a pipe), carriage returns would
// garble it: it gets a plain line every plainEvery and one at the end.
func progress(w io.Writer, label, unit string, count *atomic.Int64, total int64, dur time.Duration) (stop func()) {
	start := time.Now()
	// On a terminal, \r rewrites the line and trailing blanks cover what a
	// longer one left.
	every, head, tail := 200*time.Millisecond, "\r", "   "
	if !host.IsTerminal(w) {
		every, head, tail = host.PlainEvery, "", "\n"
	}
	done, finished := make(chan struct{}), make(chan struct{})
	show := func() {
		el := time.Since(start)
		frac := 0.0
		switch {
		case total > 0:
			frac = float64(count.Load()) / float64(total)
		case dur > 0:
			frac = el.Seconds() / dur.Seconds()
		}
		frac = min(max(frac, 0), 1)
		bar := strings.Repeat("#", int(frac*30)) + strings.Repeat(".", 30-int(frac*30))
		n := count.Load()
		_, _ = fmt.Fprintf(w, "%s  %-34s [%s] %3.0f%% %6.1fs %s %s (%s/s)%s", head, label, bar, frac*100, el.Seconds(),
			human(float64(n)), unit, human(float64(n)/max(el.Seconds(), 1e-9)), tail)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				show()
				if head != "" {
					_, _ = io.WriteString(w, "\n")
				}
				return
			case <-t.C:
				show()
			}
		}
	}()
	return func() { close(done); <-finished }
}
