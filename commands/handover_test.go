package commands_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// Issue 13 §2's acceptance bounds, with a margin for a loaded test machine
// kept well below what the old timings (a 30 s saga ack wait) produce.
const (
	handOverBound = 5 * time.Second
	handOverSlack = 2 * time.Second
	// delayedConfirmation is a delay between grant and confirmation that
	// only a hand-over explains, and longer than the expiry's own latency.
	delayedConfirmation = 2 * time.Second
	// handOverTTL outlasts a sale (2–4 s here) plus the bound and its
	// slack, so that every order is decided before the first release
	// whenever the hand-over keeps its bound.
	handOverTTL   = 10 * time.Second
	handOverStock = 50
	handOverBuyer = 300
)

// TestLosingAnEngineMidSaleHandsOverWithinSeconds: two engines on one
// NATS, a flash sale (300 single-unit orders for 50 units, TTL 10 s, nobody
// pays), and the engine that holds the SKU's partition killed at a random
// moment while grants are handed out, as its saga holds grants not yet
// told to their orders: its connection closed without draining and its
// workers stopped without acknowledging anything. Every order must leave pending within 5 s (plus
// a margin for a loaded machine) of the kill or of its placement, if
// later; every confirmed order must expire within TTL + 5 s of its grant;
// the SKU must never hold more than its stock; and exactly the stock is
// sold. HANDOVER_ROUNDS sets the number of rounds (default 3, about 15 s
// each), each on a fresh server and SKU; the hand-over times go to the log.
func TestLosingAnEngineMidSaleHandsOverWithinSeconds(t *testing.T) {
	rounds := 3
	if v := os.Getenv("HANDOVER_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("HANDOVER_ROUNDS=%q: want a positive integer", v)
		}
		rounds = n
	}
	var waits, lasts []time.Duration
	for r := range rounds {
		ok := t.Run(fmt.Sprint("round ", r+1), func(t *testing.T) {
			wait, last := saleWithAKill(t, fmt.Sprintf("KILL-%d", r+1))
			waits, lasts = append(waits, wait), append(lasts, last)
		})
		if !ok {
			break
		}
	}
	logSpread(t, "longest wait of an order in pending after max(kill, its placement)", waits)
	logSpread(t, "last order settled after the kill", lasts)
}

func logSpread(t *testing.T, what string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	for i := range ds {
		ds[i] = ds[i].Round(time.Millisecond)
	}
	t.Logf("%s over %d rounds: median %s, max %s, all %v", what, len(ds), ds[len(ds)/2], ds[len(ds)-1], ds)
}

// saleWithAKill runs one round and returns the longest an order stayed
// pending after the kill or its later placement, and how long after the
// kill the last order left pending.
func saleWithAKill(t *testing.T, sku string) (wait, last time.Duration) {
	ns, nc := testnats.Start(t)
	v := startVictim(t, testnats.Connect(t, ns))
	// The victim is the only processor for now, so it is pinned to the
	// partition by the first request it is given (an order refused on a
	// SKU of the same partition without stock); the survivor then waits in
	// line behind it.
	warm := samePartition(sku)
	v.setStock(t, warm, 0)
	warmOrder := v.place(t, line(warm, 1))
	if got := v.settle(t, warmOrder); got != domain.StatusRejected {
		t.Fatalf("warm-up order %s, want rejected", got)
	}
	waitPinned(t, v.engine, v.app.Store.ShardOf(warmOrder), eventstore.PartitionOf(sku))
	survivor := newEngine(t, nc, handOverTTL, true)
	survivor.setStock(t, sku, handOverStock)

	stopSampling := sampleSKU(t, survivor, sku)
	start := time.Now()
	// After a random number of placements, while grants are still being
	// handed out, the victim dies as soon as its saga holds a batch with a
	// grant not yet told to its order: the worst moment.
	armAfter := 1 + rand.N(handOverStock*4/5)
	ids := placeConcurrently(t, survivor, sku, handOverBuyer, func(placed int) {
		if placed == armAfter {
			v.armed.Store(true)
		}
	})
	placedBy := time.Now()
	var kill time.Time
	select {
	case kill = <-v.killedAt:
	case <-time.After(2 * time.Second):
		t.Logf("the victim's saga was handed no grant after %d placements; killed after the sale", armAfter)
		v.kill()
		kill = <-v.killedAt
	}
	v.stop()
	t.Logf("placed %d orders in %s, armed the kill after %d of them, killed the partition's processor %s after the start",
		len(ids), placedBy.Sub(start).Round(time.Millisecond), armAfter, kill.Sub(start).Round(time.Millisecond))

	settled := settleAll(t, survivor, ids)
	var lastAt time.Time
	var confirmed []string
	late := 0
	for i, o := range settled {
		at := settledAt(o)
		lastAt = latest(lastAt, at)
		w := at.Sub(latest(kill, o.CreatedAt))
		wait = max(wait, w)
		if w > handOverBound+handOverSlack {
			late++
		}
		if o.Status != domain.StatusRejected {
			confirmed = append(confirmed, ids[i])
		}
	}
	if late > 0 {
		t.Errorf("%d orders left pending more than %s after the kill (or their later placement), the latest %s after",
			late, handOverBound+handOverSlack, wait.Round(time.Millisecond))
	}
	// Nothing is released before the first grant's TTL has passed (start +
	// TTL at the earliest), so while every order was decided before then,
	// exactly the stock was granted. Not later: between shards requests
	// have no order (docs/design/sharded-store.md), so a request of a shard
	// whose processor was lost may be decided after a release of a grant
	// made on another shard meanwhile, and legitimately take that unit.
	switch {
	case lastAt.Before(start.Add(handOverTTL)) && len(confirmed) != handOverStock:
		t.Errorf("%d orders confirmed, want exactly the stock, %d", len(confirmed), handOverStock)
		logDecisions(t, survivor, sku, start)
	case !lastAt.Before(start.Add(handOverTTL)):
		t.Logf("the last order was decided %s after the start, later than the TTL: %d confirmed, the exact count not checked",
			lastAt.Sub(start).Round(time.Millisecond), len(confirmed))
	}
	// Within TTL + 5 s of the grant, and, for an order whose confirmation
	// the hand-over delayed, sooner than TTL after the confirmation: a TTL
	// counted from the confirmation can never do that.
	over, fromConfirmation, longest := 0, 0, time.Duration(0)
	for _, id := range confirmed {
		o := awaitStatus(t, survivor, id, domain.StatusExpired)
		if o.GrantedAt.IsZero() {
			t.Errorf("order %s has no grant time", id)
			continue
		}
		if held := o.UpdatedAt.Sub(o.GrantedAt); held > handOverTTL+handOverBound {
			over, longest = over+1, max(longest, held)
		}
		if o.ConfirmedAt.Sub(o.GrantedAt) > delayedConfirmation && !o.UpdatedAt.Before(o.ConfirmedAt.Add(handOverTTL)) {
			fromConfirmation++
		}
	}
	if over > 0 {
		t.Errorf("%d orders expired more than TTL %s + %s after their grant, the latest %s after",
			over, handOverTTL, handOverBound, longest.Round(time.Millisecond))
	}
	if fromConfirmation > 0 {
		t.Errorf("%d orders confirmed more than %s after their grant expired a whole TTL after the confirmation",
			fromConfirmation, delayedConfirmation)
	}
	eventually(t, "every unit released", func() bool { return survivor.sku(t, sku).Reserved == 0 })
	stopSampling()
	return wait, lastAt.Sub(kill)
}

// victim is an engine that dies on demand: its NATS connection closed
// without draining, so nothing it holds is acknowledged, and its workers
// cut off from the server until they are stopped.
type victim struct {
	*engine
	conn     natsConn
	armed    atomic.Bool
	once     sync.Once
	killedAt chan time.Time
}

// startVictim runs an engine on conn with the workers of RunWorkers, except
// that once armed its saga kills the engine when handed a batch holding a
// grant.
func startVictim(t *testing.T, conn natsConn) *victim {
	t.Helper()
	v := &victim{engine: newEngine(t, conn, handOverTTL, false), conn: conn, killedAt: make(chan time.Time, 1)}
	a := v.app
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for k := range a.Store.Shards() {
		for p := range eventstore.ReservationPartitions {
			wg.Go(func() { _ = a.Store.ConsumeReservations(ctx, k, p, a.Log, a.ProcessReservations) })
		}
	}
	wg.Go(func() {
		_ = a.Store.ConsumeOutcomes(ctx, a.Log, func(ctx context.Context, envs []eventstore.Envelope) error {
			if v.armed.Load() && holdsGrant(t, envs) {
				v.kill()
				return errors.New("killed holding the batch")
			}
			return a.RecordOutcomes(ctx, envs)
		})
	})
	wg.Go(func() { _ = a.Store.ConsumeExpiries(ctx, a.Log, a.ExpireDue) })
	v.stop = func() {
		cancel()
		wg.Wait()
		v.stop = func() {}
	}
	return v
}

// kill closes the victim's connection, once, and records when.
func (v *victim) kill() {
	v.once.Do(func() {
		v.conn.Close()
		v.killedAt <- time.Now()
	})
}

// holdsGrant reports whether some SKU event of envs grants a reservation.
func holdsGrant(t *testing.T, envs []eventstore.Envelope) bool {
	for _, env := range envs {
		ev, err := domain.DecodeSKUEvent(env.Type, env.SchemaVersion, env.Data)
		if err != nil {
			t.Error(err)
			return false
		}
		if batch, ok := ev.(domain.ReservationsDecided); ok && slices.ContainsFunc(batch.Decisions, func(d domain.ReservationDecision) bool {
			return d.Reserved != nil
		}) {
			return true
		}
	}
	return false
}

// samePartition returns a SKU other than sku in sku's partition.
func samePartition(sku string) string {
	for i := 0; ; i++ {
		if other := fmt.Sprintf("WARM-%d", i); eventstore.PartitionOf(other) == eventstore.PartitionOf(sku) {
			return other
		}
	}
}

// waitPinned waits until a processor is pinned to partition p of shard k.
func waitPinned(t *testing.T, e *engine, k, p int) {
	t.Helper()
	js, err := jetstream.New(e.app.Store.Conn())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a processor pinned to the partition", func() bool {
		cons, err := js.Consumer(context.Background(), e.app.Store.Stream(k), eventstore.ReservationConsumers()[p])
		if err != nil {
			return false
		}
		return slices.ContainsFunc(cons.CachedInfo().PriorityGroups, func(g jetstream.PriorityGroupState) bool {
			return g.PinnedClientID != ""
		})
	})
}

// sampleSKU checks, until the returned stop is called, that sku never holds
// more than its stock.
func sampleSKU(t *testing.T, e *engine, sku string) (stop func()) {
	t.Helper()
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !done.Load() {
			snap, err := e.app.SKUs.Load(context.Background(), sku)
			if err == nil && (snap.State.Reserved > handOverStock || snap.State.Reserved > snap.State.OnHand) {
				t.Errorf("SKU %s holds %d of %d on hand (stock %d)", sku, snap.State.Reserved, snap.State.OnHand, handOverStock)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return func() {
		done.Store(true)
		wg.Wait()
	}
}

// placeConcurrently places n single-unit orders on sku, eight at a time,
// calling placed with the count of orders placed so far after each.
func placeConcurrently(t *testing.T, e *engine, sku string, n int, placed func(int)) []string {
	t.Helper()
	ids := make([]string, n)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				ids[i] = e.place(t, line(sku, 1))
				placed(int(done.Add(1)))
			}
		})
	}
	wg.Wait()
	return ids
}

// settleAll waits until every order has left pending and returns them.
func settleAll(t *testing.T, e *engine, ids []string) []domain.Order {
	t.Helper()
	out := make([]domain.Order, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			snap, err := e.app.AwaitReservation(context.Background(), id, 60*time.Second)
			if err != nil || snap.State.Status == domain.StatusPending {
				t.Errorf("order %s still pending after a minute (%v)", id, err)
				return
			}
			out[i] = snap.State
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// settledAt is when o left pending: its confirmation, or its rejection
// (terminal, so its last update).
func settledAt(o domain.Order) time.Time {
	if !o.ConfirmedAt.IsZero() {
		return o.ConfirmedAt
	}
	return o.UpdatedAt
}

// awaitStatus waits up to 30 s for order id to reach status.
func awaitStatus(t *testing.T, e *engine, id string, status domain.OrderStatus) domain.Order {
	t.Helper()
	var o domain.Order
	eventually(t, fmt.Sprintf("order %s %s", id, status), func() bool {
		o = e.order(t, id)
		return o.Status == status
	})
	return o
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// logDecisions logs sku's stored decisions, in order, with their times
// after start: what a wrong count of grants is explained by.
func logDecisions(t *testing.T, e *engine, sku string, start time.Time) {
	t.Helper()
	err := e.app.Store.History(context.Background(), e.app.SKUs.Subject(sku), func(seq uint64, env eventstore.Envelope) error {
		ev, err := domain.DecodeSKUEvent(env.Type, env.SchemaVersion, env.Data)
		if err != nil {
			return err
		}
		batch, ok := ev.(domain.ReservationsDecided)
		if !ok {
			t.Logf("seq %d %s at +%s", seq, env.Type, env.OccurredAt.Sub(start).Round(time.Millisecond))
			return nil
		}
		counts := map[string]int{}
		for _, d := range batch.Decisions {
			counts[fmt.Sprintf("%T", d.Event())]++
		}
		t.Logf("seq %d decided at +%s, placed %t, through %d: %v", seq, batch.At.Sub(start).Round(time.Millisecond), batch.Placed, batch.ThroughSeq, counts)
		return nil
	})
	if err != nil {
		t.Errorf("history of %s: %v", sku, err)
	}
}
