package projections

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/enginetest"
	"github.com/orderengine/engine/internal/testnats"
)

// fixture is an engine on a real embedded nats-server: its store and its
// command side, with the reservation workers running.
type fixture struct {
	nc    *nats.Conn
	store *eventstore.Store
	app   *commands.App
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	_, nc := testnats.Start(t)
	f, _ := fixtureOn(t, nc, testnats.Shards())
	return f
}

// fixtureOn opens a store on nc asking for that many shards and starts the
// workers; stop stops them and closes the store (also done at the end of
// the test).
func fixtureOn(t *testing.T, nc *nats.Conn, shards int) (f *fixture, stop func()) {
	t.Helper()
	store, err := eventstore.Open(context.Background(), nc, eventstore.Options{Shards: shards})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	app := enginetest.NewApp(store, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.RunWorkers(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("workers: %v", err)
			}
			store.Close()
		})
	}
	t.Cleanup(stop)
	return &fixture{nc: nc, store: store, app: app}, stop
}

// newPool returns a pool on a fresh database holding the schema.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return enginetest.Postgres(t)
}

func (f *fixture) meta() commands.Meta { return commands.Meta{CommandID: f.app.NewID()} }

func (f *fixture) setStock(t testing.TB, sku string, n int64) {
	t.Helper()
	if _, err := f.app.SetOnHand(context.Background(), f.meta(), sku, commands.SetOnHand{OnHand: n}); err != nil {
		t.Fatalf("set stock of %s: %v", sku, err)
	}
}

func (f *fixture) place(t testing.TB, lines ...domain.Line) string {
	t.Helper()
	out, err := f.app.PlaceOrder(context.Background(), f.meta(),
		commands.PlaceOrder{CustomerID: "c1", Currency: "USD", Lines: lines})
	if err != nil {
		t.Fatalf("place order: %v", err)
	}
	return out.State.ID
}

func (f *fixture) settle(t testing.TB, id string) domain.Order {
	t.Helper()
	snap, err := f.app.AwaitReservation(context.Background(), id, 60*time.Second)
	if err != nil {
		t.Fatalf("await order %s: %v", id, err)
	}
	return snap.State
}

func line(sku string, qty int64) domain.Line {
	return domain.Line{SKU: sku, Qty: qty, UnitPriceCents: 1250}
}

// quiesce waits until the reservation processors and the saga have handled
// everything, so the stream stops growing.
func (f *fixture) quiesce(t testing.TB) {
	t.Helper()
	eventually(t, "workers idle", func() bool {
		idle, err := f.store.ReservationFlowIdle(context.Background())
		return err == nil && idle
	})
}

// lastEventSeq returns, per shard, the stream sequence of the last event
// (orders.* or inventory.*), which is where a caught-up projection's
// checkpoints stand.
func (f *fixture) lastEventSeq(t testing.TB) []uint64 {
	t.Helper()
	last, err := f.store.LastEventSeqs(context.Background())
	if err != nil {
		t.Fatalf("last events: %v", err)
	}
	return last
}

// eqSeqs reports whether two per-shard sequences are equal, a shard one of
// them leaves out standing at 0.
func eqSeqs(a, b []uint64) bool {
	for k := range max(len(a), len(b)) {
		if at(a, k) != at(b, k) {
			return false
		}
	}
	return true
}

// trimSeqs drops the shards at 0 from the end of seqs, so that equal
// sequences print alike.
func trimSeqs(seqs []uint64) []uint64 {
	for len(seqs) > 0 && seqs[len(seqs)-1] == 0 {
		seqs = seqs[:len(seqs)-1]
	}
	return seqs
}

// covers reports whether have is at or past want on every shard.
func covers(have, want []uint64) bool {
	for k := range want {
		if at(have, k) < want[k] {
			return false
		}
	}
	return true
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running runs r in the background until stop is called.
func running(t testing.TB, r *Runner) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}

// runUntil runs r until the checkpoints reach seq, then stops it.
func runUntil(t testing.TB, r *Runner, seq []uint64) {
	t.Helper()
	defer running(t, r)()
	eventually(t, fmt.Sprintf("checkpoints %v", seq), func() bool {
		cp, err := Checkpoints(context.Background(), r.pool, MainProjection)
		return err == nil && covers(cp, seq)
	})
}

// dump returns every read-model row as JSON text, in key order; the
// checkpoint's time and the dead letters' times are left out.
func dump(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT 'orders ' || row_to_json(t)::text FROM rm.orders t ORDER BY order_id`,
		`SELECT 'lines ' || row_to_json(t)::text FROM rm.order_lines t ORDER BY order_id, line_no`,
		`SELECT 'inventory ' || row_to_json(t)::text FROM rm.inventory t ORDER BY sku`,
		`SELECT 'dead ' || concat_ws(' ', projection, seq, subject, event_type, attempts, envelope::text)
			FROM rm.dead_letters ORDER BY projection, seq`,
	} {
		rows, err := pool.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("dump: %v", err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatalf("dump: %v", err)
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump: %v", err)
		}
	}
	return out
}

func sameDump(t testing.TB, want, got []string) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if want[i] != got[i] {
			t.Fatalf("row %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// scenario drives real commands through every kind of event: stock set and
// restocked, single- and multi-line orders, rejections (short stock, a SKU
// without stock, a SKU never set up), a cancel, a payment and a shipment. It
// returns the order ids and SKUs involved.
func scenario(t *testing.T, f *fixture) (orders, skus []string) {
	t.Helper()
	ctx := context.Background()
	f.setStock(t, "SKU-A", 20)
	f.setStock(t, "SKU-B", 5)
	f.setStock(t, "SKU-C", 0)
	skus = []string{"SKU-A", "SKU-B", "SKU-C", "SKU-D"}
	orders = []string{
		f.place(t, line("SKU-A", 2)),
		f.place(t, line("SKU-A", 1), line("SKU-B", 2)),
		f.place(t, line("SKU-A", 3)),
		f.place(t, line("SKU-B", 10)),                  // rejected: short
		f.place(t, line("SKU-A", 1), line("SKU-C", 1)), // rejected after a partial reservation
		f.place(t, line("SKU-D", 1)),                   // rejected: never stocked
		f.place(t, line("SKU-A", 2), line("SKU-B", 1)),
	}
	states := make([]domain.Order, len(orders))
	for i, id := range orders {
		states[i] = f.settle(t, id)
	}
	want := []domain.OrderStatus{"confirmed", "confirmed", "confirmed", "rejected", "rejected", "rejected", "confirmed"}
	for i, s := range states {
		if s.Status != want[i] {
			t.Fatalf("order %d is %s, want %s", i, s.Status, want[i])
		}
	}
	if _, err := f.app.CancelOrder(ctx, f.meta(), orders[2], commands.CancelOrder{Reason: "changed my mind"}); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if _, err := f.app.PayOrder(ctx, f.meta(), orders[1], commands.PayOrder{AmountCents: states[1].TotalCents, PaymentRef: "pay-1"}); err != nil {
		t.Fatalf("pay: %v", err)
	}
	if _, err := f.app.ShipOrder(ctx, f.meta(), orders[1], commands.ShipOrder{Carrier: "UPS", TrackingNumber: "1Z999"}); err != nil {
		t.Fatalf("ship: %v", err)
	}
	if _, err := f.app.PayOrder(ctx, f.meta(), orders[6], commands.PayOrder{AmountCents: states[6].TotalCents, PaymentRef: "pay-2"}); err != nil {
		t.Fatalf("pay: %v", err)
	}
	if _, err := f.app.Restock(ctx, f.meta(), "SKU-B", commands.Restock{Qty: 7}); err != nil {
		t.Fatalf("restock: %v", err)
	}
	// After the money: a partial refund of a paid order, and of a
	// delivered one whose line then partly comes back.
	if _, err := f.app.RefundOrder(ctx, f.meta(), orders[6], commands.RefundOrder{AmountCents: 50, Reason: "late"}); err != nil {
		t.Fatalf("refund: %v", err)
	}
	if _, err := f.app.DeliverOrder(ctx, f.meta(), orders[1], commands.DeliverOrder{}); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	if _, err := f.app.RefundOrder(ctx, f.meta(), orders[1], commands.RefundOrder{AmountCents: 100, Reason: "dented box"}); err != nil {
		t.Fatalf("refund: %v", err)
	}
	if _, err := f.app.ReturnOrder(ctx, f.meta(), orders[1], commands.ReturnOrder{
		Lines: []domain.ReturnLine{{SKU: "SKU-B", Qty: 1}}, Reason: "wrong size"}); err != nil {
		t.Fatalf("return: %v", err)
	}
	f.quiesce(t)
	return orders, skus
}

// checkAgainstStore compares every read-model row with the state folded
// from the event store.
func checkAgainstStore(t *testing.T, f *fixture, pool *pgxpool.Pool, orders, skus []string) {
	t.Helper()
	ctx := context.Background()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM rm.orders`).Scan(&n); err != nil || n != len(orders) {
		t.Fatalf("rm.orders has %d rows (%v), want %d", n, err, len(orders))
	}
	for _, id := range orders {
		snap, err := f.app.Orders.Load(ctx, id)
		if err != nil {
			t.Fatalf("load order %s: %v", id, err)
		}
		o := snap.State
		var (
			customer, status, currency string
			total, refund, version     int64
			refunded                   int64
			created, updated           time.Time
		)
		err = pool.QueryRow(ctx, `SELECT customer_id, status, currency, total_cents, refund_due_cents, version,
			created_at, updated_at, refunded_cents FROM rm.orders WHERE order_id = $1`, id).
			Scan(&customer, &status, &currency, &total, &refund, &version, &created, &updated, &refunded)
		if err != nil {
			t.Fatalf("read order %s: %v", id, err)
		}
		got := fmt.Sprint(customer, status, currency, total, refund, version, refunded)
		want := fmt.Sprint(o.CustomerID, o.Status, o.Currency, o.TotalCents, o.RefundDueCents, o.Version, o.RefundedCents)
		if got != want {
			t.Errorf("order %s: row %s, store %s", id, got, want)
		}
		if !sameTime(created, o.CreatedAt) || !sameTime(updated, o.UpdatedAt) {
			t.Errorf("order %s: times %v %v, store %v %v", id, created, updated, o.CreatedAt, o.UpdatedAt)
		}
		rows, err := pool.Query(ctx, `SELECT line_no, sku, qty, unit_price_cents, returned_qty FROM rm.order_lines
			WHERE order_id = $1 ORDER BY line_no`, id)
		if err != nil {
			t.Fatalf("read lines: %v", err)
		}
		var lines []domain.Line
		for rows.Next() {
			var (
				no       int
				l        domain.Line
				returned int64
			)
			if err := rows.Scan(&no, &l.SKU, &l.Qty, &l.UnitPriceCents, &returned); err != nil {
				t.Fatalf("read lines: %v", err)
			}
			if returned != o.ReturnedQty(l.SKU) {
				t.Errorf("order %s: %d units of %s returned, store %d", id, returned, l.SKU, o.ReturnedQty(l.SKU))
			}
			if no != len(lines) {
				t.Errorf("order %s: line_no %d at position %d", id, no, len(lines))
			}
			lines = append(lines, l)
		}
		if fmt.Sprint(lines) != fmt.Sprint(o.Lines) {
			t.Errorf("order %s: lines %v, store %v", id, lines, o.Lines)
		}
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM rm.inventory`).Scan(&n); err != nil || n != len(skus) {
		t.Fatalf("rm.inventory has %d rows (%v), want %d", n, err, len(skus))
	}
	for _, sku := range skus {
		snap, err := f.app.SKUs.Load(ctx, sku)
		if err != nil {
			t.Fatalf("load %s: %v", sku, err)
		}
		s := snap.State
		var (
			onHand, reserved, version int64
			updated                   time.Time
		)
		err = pool.QueryRow(ctx, `SELECT on_hand, reserved, version, updated_at FROM rm.inventory WHERE sku = $1`, sku).
			Scan(&onHand, &reserved, &version, &updated)
		if err != nil {
			t.Fatalf("read %s: %v", sku, err)
		}
		if got, want := fmt.Sprint(onHand, reserved, version), fmt.Sprint(s.OnHand, s.Reserved, s.Version); got != want {
			t.Errorf("%s: row %s, store %s", sku, got, want)
		}
		if !sameTime(updated, s.UpdatedAt) {
			t.Errorf("%s: updated_at %v, store %v", sku, updated, s.UpdatedAt)
		}
	}
}

// sameTime compares a Postgres timestamp (microseconds) with a Go time.
func sameTime(db, event time.Time) bool {
	d := db.Sub(event)
	return d > -time.Microsecond && d < time.Microsecond
}

func TestRunnerMatchesEventStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	orders, skus := scenario(t, f)
	// With several shards, the aggregates are spread over them, and every
	// shard's events must reach the read models.
	shards := map[int]bool{}
	for _, id := range append(orders, skus...) {
		shards[f.store.ShardOf(id)] = true
	}
	if f.store.Shards() > 1 && len(shards) < 2 {
		t.Fatalf("the scenario's aggregates are all on shards %v", shards)
	}
	runUntil(t, NewRunner(f.store, pool, quietLog()), f.lastEventSeq(t))
	checkAgainstStore(t, f, pool, orders, skus)
	if got, want := mustCheckpoint(t, pool), f.lastEventSeq(t); !eqSeqs(got, want) {
		t.Errorf("checkpoints %v, want %v", got, want)
	}
}

func mustCheckpoint(t testing.TB, pool *pgxpool.Pool) []uint64 {
	t.Helper()
	cp, err := Checkpoints(context.Background(), pool, MainProjection)
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	return cp
}

func TestReplayingBatchesChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	orders, skus := scenario(t, f)
	last := f.lastEventSeq(t)
	runUntil(t, NewRunner(f.store, pool, quietLog()), last)
	before := dump(t, pool)
	for _, tc := range []struct {
		name  string
		from  func(last uint64) uint64 // per shard
		batch int
	}{
		{"everything again in one batch", func(uint64) uint64 { return 0 }, maxBatch},
		{"second half in batches of 3", func(last uint64) uint64 { return last / 2 }, 3},
		{"one event at a time from the first", func(last uint64) uint64 { return min(last, 1) }, 1},
		{"the last event only", func(last uint64) uint64 { return max(last, 1) - 1 }, maxBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, seq := range last {
				if _, err := pool.Exec(context.Background(), `UPDATE rm.checkpoints SET last_seq = $1 WHERE shard = $2`, int64(tc.from(seq)), k); err != nil {
					t.Fatalf("reset checkpoint: %v", err)
				}
			}
			r := NewRunner(f.store, pool, quietLog())
			r.batch = tc.batch
			runUntil(t, r, last)
			sameDump(t, before, dump(t, pool))
		})
	}
	checkAgainstStore(t, f, pool, orders, skus)
}

func TestInterruptedRunConvergesToFreshReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	for _, sku := range []string{"HOT-1", "HOT-2", "HOT-3"} {
		f.setStock(t, sku, 40)
	}

	// Commands keep flowing while the projection is stopped and restarted.
	var wg sync.WaitGroup
	wg.Go(func() {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range 60 {
			lines := []domain.Line{line(fmt.Sprintf("HOT-%d", 1+i%3), int64(1+rng.IntN(3)))}
			if i%4 == 0 {
				lines = append(lines, line(fmt.Sprintf("HOT-%d", 1+(i+1)%3), 1))
			}
			out, err := f.app.PlaceOrder(ctx, f.meta(), commands.PlaceOrder{CustomerID: "c2", Currency: "EUR", Lines: lines})
			if err != nil {
				t.Errorf("place: %v", err)
				return
			}
			id := out.State.ID
			if i%5 == 0 {
				snap, err := f.app.AwaitReservation(ctx, id, time.Minute)
				if err == nil && snap.State.Status == domain.StatusConfirmed {
					if _, err := f.app.CancelOrder(ctx, f.meta(), id, commands.CancelOrder{}); err != nil {
						t.Errorf("cancel: %v", err)
					}
				}
			}
			if i%20 == 19 {
				if _, err := f.app.Restock(ctx, f.meta(), "HOT-2", commands.Restock{Qty: 10}); err != nil {
					t.Errorf("restock: %v", err)
				}
			}
		}
	})
	rng := rand.New(rand.NewPCG(3, 4))
	for range 12 {
		r := NewRunner(f.store, pool, quietLog())
		r.batch = 1 + rng.IntN(8)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		time.Sleep(time.Duration(5+rng.IntN(60)) * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		t.Logf("stopped at checkpoints %v (batches of %d)", mustCheckpoint(t, pool), r.batch)
	}
	wg.Wait()
	f.quiesce(t)
	last := f.lastEventSeq(t)
	runUntil(t, NewRunner(f.store, pool, quietLog()), last)

	fresh := newPool(t)
	runUntil(t, NewRunner(f.store, fresh, quietLog()), last)
	sameDump(t, dump(t, fresh), dump(t, pool))
	if got := mustCheckpoint(t, pool); !eqSeqs(got, last) {
		t.Errorf("checkpoints %v, want %v", got, last)
	}
}

// publish stores a raw message on subject (orders.<id>, inventory.<sku>)
// in its aggregate's shard, bypassing the event store, and returns its
// position.
func publish(t testing.TB, f *fixture, subject string, data []byte) eventstore.Position {
	t.Helper()
	js, err := jetstream.New(f.store.Conn())
	if err != nil {
		t.Fatal(err)
	}
	k := f.store.ShardOf(subject[strings.IndexByte(subject, '.')+1:])
	_, stored := f.store.Locate(k, subject)
	ack, err := js.Publish(context.Background(), stored, data)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return eventstore.Position{Shard: k, Seq: ack.Sequence}
}
