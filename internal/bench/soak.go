package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/internal/host"
	"github.com/orderengine/engine/internal/metrics"
)

const (
	soakSKU = "SOAK-1"
	// soakInFlight bounds the orders outstanding, as e2e's does.
	soakInFlight = 2048
)

// benchSoak is a long flash sale on one hot SKU: soak-rate single-unit
// orders/s, open loop (paced by the clock, up to 2,048 in flight; an order
// due while all are busy is not sent, and counted), for soak-duration,
// with soak-restock units added every soak-restock-every and a reservation
// TTL of soak-ttl; nobody pays, so every grant expires. After the load it
// watches soak-after more. Every soak-sample it records this process's RSS
// and Go heap (the engine and its embedded nats-server run in it), the
// units held and of them those past their due (grant + TTL) and past due +
// 5 s, the expiry timers not handled yet and how late the oldest is, and
// orders and expiries per second. Each release's lag is the time from its due to its release
// in the SKU's stream. It fails on an oversell or when the SKU's reserved
// units differ from what its stream says is held.
func (b *bencher) benchSoak(ctx context.Context) error {
	o := b.opts
	// The samples and the progress lines share stderr.
	stderr := &lockedWriter{w: b.stderr}
	e, err := b.startEngine(ctx, "soak", soakInFlight, func(c *host.Spec) { c.ReservationTTL = o.soakTTL })
	if err != nil {
		return err
	}
	defer func() { _ = e.stop() }()
	restock := int64(o.soakRestock)
	if err := e.api.setStock(ctx, soakSKU, restock); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	track := newSoakTracker(o.soakTTL)
	if err := track.follow(ctx, e.Store, soakSKU); err != nil {
		return err
	}
	first := firstError{cancel: cancel}
	var accepted, skipped, sent atomic.Int64
	start := time.Now()
	samples := b.soakSampler(ctx, e, track, start, &accepted, first.set, stderr)
	loadCtx, stopLoad := context.WithTimeout(ctx, o.soakDuration)
	defer stopLoad()
	go host.Every(loadCtx, o.soakRestockEvery, func(ctx context.Context) {
		a, err := e.api.do(ctx, http.MethodPost, "/v1/inventory/"+soakSKU+"/restock", map[string]int64{"qty": restock})
		if err == nil {
			err = a.expect("restock", http.StatusOK)
		}
		if err != nil && ctx.Err() == nil {
			first.set(err)
		}
	})
	var wg sync.WaitGroup
	sem := make(chan struct{}, soakInFlight)
	stop := progress(stderr, fmt.Sprintf("soak: %d orders/s", o.soakRate), "orders", &accepted, 0, o.soakDuration)
	tick := time.NewTicker(time.Millisecond)
	for el := time.Duration(0); loadCtx.Err() == nil; el = time.Since(start) {
		for due := int64(el.Seconds() * float64(o.soakRate)); sent.Load() < due; sent.Add(1) {
			select {
			case sem <- struct{}{}:
				wg.Go(func() {
					defer func() { <-sem }()
					a, _, err := e.api.placeOrder(ctx, soakSKU, 1)
					if err == nil {
						err = a.expect("place an order", http.StatusAccepted)
					}
					if err != nil && ctx.Err() == nil {
						first.set(err)
						return
					}
					accepted.Add(1)
				})
			default:
				skipped.Add(1)
			}
		}
		select {
		case <-tick.C:
		case <-loadCtx.Done():
		}
	}
	tick.Stop()
	wg.Wait()
	loadTook := time.Since(start)
	stop()
	stop = progress(stderr, "soak: after the load", "units released", &track.releasedNow, 0, o.soakAfter)
	select {
	case <-ctx.Done():
	case <-time.After(o.soakAfter):
	}
	stop()
	cancel()
	rows := <-samples
	if first.err != nil && !errors.Is(first.err, context.Canceled) {
		return first.err
	}
	return b.reportSoak(e, track, rows, loadTook, sent.Load(), accepted.Load(), skipped.Load())
}

// soakSampler records a soakSample every soak-sample until ctx ends, then
// sends them all.
func (b *bencher) soakSampler(ctx context.Context, e *benchEngine, track *soakTracker, start time.Time,
	accepted *atomic.Int64, fail func(error), stderr io.Writer) <-chan []soakSample {
	out := make(chan []soakSample, 1)
	go func() {
		var rows []soakSample
		var lastAcc, lastRel int64
		last := start
		sample := func(ctx context.Context) {
			now := time.Now()
			c := track.counts(now)
			backlog, overdue, err := e.Store.ExpiryBacklog(ctx)
			if err != nil && ctx.Err() == nil {
				fail(err)
			}
			acc, secs := accepted.Load(), now.Sub(last).Seconds()
			r := soakSample{At: now.Sub(start), RSSMiB: rssMiB(), HeapMiB: heapMiB(),
				Accepted: acc - lastAcc, Expiries: c.released - lastRel,
				Held: c.held, Overdue: c.overdue, Late: c.late, Backlog: backlog, OverdueS: overdue.Seconds()}
			r.AcceptedPS, r.ExpiriesPS = float64(r.Accepted)/secs, float64(r.Expiries)/secs
			lastAcc, lastRel, last = acc, c.released, now
			rows = append(rows, r)
			if b.opts.memProfile != "" {
				if err := writeHeapProfile(fmt.Sprintf("%s.%04.0fs", b.opts.memProfile, r.At.Seconds())); err != nil {
					fail(err)
				}
			}
			_, _ = fmt.Fprintf(stderr, "\n  t=%4.0fs rss=%6.0fMiB heap=%6.0fMiB orders/s=%5.0f expiries/s=%5.0f held=%7d overdue=%7d late=%7d timers=%6d overdue=%4.0fs requests=%5d feed-lag=%7.0f feed-yields=%.0f\n",
				r.At.Seconds(), r.RSSMiB, r.HeapMiB, r.AcceptedPS, r.ExpiriesPS, r.Held, r.Overdue, r.Late, r.Backlog, r.OverdueS,
				slices.Max(e.App.Backlog.ReservationBacklog().Partitions), metrics.GaugeValue(metrics.FeedPending), metrics.GaugeValue(metrics.FeedYielding))
		}
		sample(ctx)
		host.Every(ctx, b.opts.soakSample, sample)
		out <- rows
	}()
	return out
}

// reportSoak checks the SKU against the stream and records the figures and
// the sample table.
func (b *bencher) reportSoak(e *benchEngine, track *soakTracker, rows []soakSample, took time.Duration, sent, accepted, skipped int64) error {
	ctx := context.Background()
	o := b.opts
	if track.err != nil {
		return track.err
	}
	c := track.counts(time.Now())
	lags := track.sortedLags()
	if len(rows) < 2 || len(lags) == 0 {
		return errors.New("soak: too short to measure: raise -soak-duration and -soak-after")
	}
	_, _ = fmt.Fprintf(b.stdout, "\nsoak samples (%d orders/s offered for %s, TTL %s, %d units restocked every %s):\n\n",
		o.soakRate, o.soakDuration, o.soakTTL, o.soakRestock, o.soakRestockEvery)
	_, _ = fmt.Fprintln(b.stdout, "| t (s) | RSS (MiB) | Go live heap (MiB) | orders/s | expiries/s | units held | of them past due | past due + 5 s | timers pending | oldest timer overdue (s) |")
	_, _ = fmt.Fprintln(b.stdout, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var peakLoad, peakAfter float64
	for _, r := range rows {
		_, _ = fmt.Fprintf(b.stdout, "| %.0f | %.0f | %.0f | %.0f | %.0f | %d | %d | %d | %d | %.0f |\n",
			r.At.Seconds(), r.RSSMiB, r.HeapMiB, r.AcceptedPS, r.ExpiriesPS, r.Held, r.Overdue, r.Late, r.Backlog, r.OverdueS)
		if r.At <= o.soakDuration+o.soakSample/2 {
			peakLoad = max(peakLoad, r.RSSMiB)
		} else {
			peakAfter = max(peakAfter, r.RSSMiB)
		}
	}
	_, _ = fmt.Fprintln(b.stdout)
	if err := checkSoakSKU(ctx, e, track); err != nil {
		return err
	}
	end := rows[len(rows)-1]
	b.add("soak", "orders offered/s", float64(sent)/took.Seconds(), "orders/s", fmt.Sprintf("%d", o.soakRate), nil)
	b.add("soak", "orders accepted/s", float64(accepted)/took.Seconds(), "orders/s", "", nil)
	b.add("soak", fmt.Sprintf("orders not sent: %d requests already in flight", soakInFlight), float64(skipped), "orders", "", nil)
	b.add("soak", "units granted", float64(c.granted), "units", "", nil)
	b.add("soak", "units released by expiry", float64(c.released), "units", "", nil)
	b.add("soak", "expiry lag p50 (release − grant − TTL)", percentile(lags, 50), "ms", "", nil)
	b.add("soak", "expiry lag p99", percentile(lags, 99), "ms", "≤ 5000", func(v float64) bool { return v <= 5000 })
	b.add("soak", "expiry lag max", percentile(lags, 100), "ms", "", nil)
	b.add("soak", "units past due + 5 s at the end", float64(end.Late), "units", "0", func(v float64) bool { return v == 0 })
	half, endLoad := rows[0], rows[0]
	for _, r := range rows {
		// Samples come a little after their tick.
		if r.At <= o.soakDuration/2+o.soakSample/2 {
			half = r
		}
		if r.At <= o.soakDuration+o.soakSample/2 {
			endLoad = r
		}
	}
	b.add("soak", "RSS peak during the load", peakLoad, "MiB", "", nil)
	b.add("soak", fmt.Sprintf("RSS growth over the load's second half (t=%.0fs → %.0fs)", half.At.Seconds(), endLoad.At.Seconds()),
		endLoad.RSSMiB-half.RSSMiB, "MiB", "", nil)
	b.add("soak", "Go live heap at the end of the load", endLoad.HeapMiB, "MiB", "", nil)
	b.add("soak", "RSS peak after the load", peakAfter, "MiB", "", nil)
	b.add("soak", "RSS at the end", end.RSSMiB, "MiB", "", nil)
	b.add("soak", "Go live heap at the end", end.HeapMiB, "MiB", "", nil)
	return e.stop()
}

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return errors.Wrap(err, "create the heap profile")
	}
	defer func() { _ = f.Close() }()
	return errors.Wrap(pprof.Lookup("heap").WriteTo(f, 0), "write the heap profile")
}

// checkSoakSKU fails unless the SKU holds no more than it has and exactly
// what its stream, read by the tracker up to the same event, says is held.
// Expiries may still be running: it compares at the version it loaded.
func checkSoakSKU(ctx context.Context, e *benchEngine, track *soakTracker) error {
	sku, err := e.App.SKUs.Load(ctx, soakSKU)
	if err != nil {
		return err
	}
	if sku.State.Reserved > sku.State.OnHand {
		return errors.Newf("OVERSELL CHECK FAILED: %s has %d reserved of %d on hand", soakSKU, sku.State.Reserved, sku.State.OnHand)
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if held, ok := track.heldAt(sku.Version); ok {
			if held != sku.State.Reserved {
				return errors.Newf("OVERSELL CHECK FAILED: %s has %d reserved at version %d; its stream holds %d",
					soakSKU, sku.State.Reserved, sku.Version, held)
			}
			return nil
		}
	}
	return errors.Newf("soak: the stream of %s was not read up to version %d within a minute", soakSKU, sku.Version)
}

// lockedWriter serializes writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
