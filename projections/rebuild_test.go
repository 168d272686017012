package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/commands"
	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/queries"
)

// warnings is a slog.Handler that keeps the messages of warnings and
// errors: a live Runner that logs none never had a batch fail.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }
func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// dumpAll is dump with the dashboard's buckets and the checkpoint.
func dumpAll(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	out := dump(t, pool)
	rows, err := pool.Query(context.Background(), `SELECT 'bucket ' || row_to_json(t)::text FROM rm.order_buckets t
ORDER BY granularity, bucket, metric, currency`)
	if err != nil {
		t.Fatalf("dump buckets: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("dump buckets: %v", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("dump buckets: %v", err)
	}
	return append(out, fmt.Sprintf("checkpoints %v", trimSeqs(mustCheckpoint(t, pool))))
}

// catalog lists the indexes and constraints of the read models in rm, as
// Postgres would create them again.
func catalog(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'rm'::regnamespace
UNION ALL
SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'rm'::regnamespace
ORDER BY 1`)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	if len(defs) == 0 {
		t.Fatal("catalog: rm holds no index")
	}
	return defs
}

// noLeftoverSchemas checks that a rebuild left neither rm_next nor rm_old.
func noLeftoverSchemas(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	var names []string
	rows, err := pool.Query(context.Background(), `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rm%' ORDER BY 1`)
	if err != nil {
		t.Fatalf("schemas: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatalf("schemas: %v", err)
		}
		names = append(names, n)
	}
	if got := strings.Join(names, ","); got != "rm" {
		t.Errorf("schemas %s, want only rm", got)
	}
}

func TestSchemaDDLNamesOnlyTheTargetSchema(t *testing.T) {
	t.Parallel()
	ddl, err := schemaDDL(NextSchema)
	if err != nil {
		t.Fatal(err)
	}
	if rmQualified.MatchString(ddl) || strings.Contains(ddl, "EXISTS rm;") {
		t.Errorf("DDL for %s still names rm:\n%s", NextSchema, ddl)
	}
	if !strings.Contains(ddl, "CREATE TABLE IF NOT EXISTS rm_next.orders") {
		t.Errorf("DDL for %s does not create rm_next.orders", NextSchema)
	}
	if _, err := schemaDDL("rm; DROP"); err == nil {
		t.Error("a bad schema name was accepted")
	}
	if _, err := NewRunnerInSchema(nil, nil, nil, "Bad-Name"); err == nil {
		t.Error("NewRunnerInSchema accepted a bad schema name")
	}
}

func TestRebuildEqualsLiveReadModels(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	orders, skus := scenario(t, f)
	last := f.lastEventSeq(t)
	runUntil(t, NewRunner(f.store, pool, quietLog()), last)
	before := dumpAll(t, pool)
	indexes := catalog(t, pool)

	var calls, done, total uint64
	err := Rebuild(context.Background(), f.store, pool, quietLog(), func(d, tot uint64) {
		calls++
		if d < done || tot < d {
			t.Errorf("progress %d of %d after %d", d, tot, done)
		}
		done, total = d, tot
	})
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	sameDump(t, before, dumpAll(t, pool))
	// The bulk of the replay ran without secondary indexes and foreign
	// keys: the rebuilt tables must have them all back, as they were.
	sameDump(t, indexes, catalog(t, pool))
	checkAgainstStore(t, f, pool, orders, skus)
	noLeftoverSchemas(t, pool)
	if calls == 0 || done != total || done == 0 {
		t.Errorf("progress: %d calls, last %d of %d", calls, done, total)
	}
	t.Logf("rebuilt %d events", done)
}

func TestRebuildWhileCommandsFlowKeepsTheLiveRunnerGoing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	for _, sku := range []string{"HOT-1", "HOT-2", "HOT-3"} {
		f.setStock(t, sku, 40)
	}
	warn := &warnings{}
	live := NewRunner(f.store, pool, slog.New(warn))
	stop := startRunner(t, live)

	var wg sync.WaitGroup
	var placed atomic.Int64
	wg.Go(func() {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(5, 6))
		for i := range 80 {
			lines := []domain.Line{line(fmt.Sprintf("HOT-%d", 1+i%3), int64(1+rng.IntN(3)))}
			out, err := f.app.PlaceOrder(ctx, f.meta(), commands.PlaceOrder{CustomerID: "c3", Currency: "USD", Lines: lines})
			if err != nil {
				t.Errorf("place: %v", err)
				return
			}
			placed.Add(1)
			id := out.State.ID
			if i%4 == 0 {
				snap, err := f.app.AwaitReservation(ctx, id, time.Minute)
				if err == nil && snap.State.Status == domain.StatusConfirmed {
					if _, err := f.app.CancelOrder(ctx, f.meta(), id, commands.CancelOrder{}); err != nil {
						t.Errorf("cancel: %v", err)
					}
				}
			}
			if i%25 == 24 {
				if _, err := f.app.Restock(ctx, f.meta(), "HOT-2", commands.Restock{Qty: 10}); err != nil {
					t.Errorf("restock: %v", err)
				}
			}
		}
	})
	// Rebuild after rebuild while the commands flow, in small batches so
	// each takes a while and the live projection moves on meanwhile.
	rebuilds := 0
	for placed.Load() < 80 || rebuilds < 2 {
		if err := rebuildWithBatch(t, f, pool, 2+rebuilds%5); err != nil {
			t.Fatalf("rebuild %d: %v", rebuilds, err)
		}
		rebuilds++
		if rebuilds > 50 {
			break
		}
	}
	wg.Wait()
	f.quiesce(t)
	last := f.lastEventSeq(t)
	eventually(t, "live runner at the last event", func() bool {
		cp, err := Checkpoints(context.Background(), pool, MainProjection)
		return err == nil && eqSeqs(cp, last)
	})
	stop()

	fresh := newPool(t)
	runUntil(t, NewRunner(f.store, fresh, quietLog()), last)
	sameDump(t, dumpAll(t, fresh), dumpAll(t, pool))
	noLeftoverSchemas(t, pool)
	if w := warn.all(); len(w) > 0 {
		t.Errorf("the live runner logged %d warnings, first: %s", len(w), w[0])
	}
	t.Logf("%d rebuilds while %d orders were placed; %d events", rebuilds, placed.Load(), last)
}

// rebuildWithBatch is Rebuild in batches of batch events.
func rebuildWithBatch(t testing.TB, f *fixture, pool *pgxpool.Pool, batch int) error {
	t.Helper()
	ctx := context.Background()
	conn, unlock, err := lockRebuild(ctx, pool)
	if err != nil {
		return err
	}
	defer unlock()
	return rebuildOn(ctx, conn, f.store, pool, quietLog(), nil, batch)
}

func TestQueriesAnswerThroughoutARebuild(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	orders, skus := scenario(t, f)
	runUntil(t, NewRunner(f.store, pool, quietLog()), f.lastEventSeq(t))
	stop := startRunner(t, NewRunner(f.store, pool, quietLog()))
	defer stop()

	orderReads, invReads := OrderReads{Pool: pool}, InventoryReads{Pool: pool}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg    sync.WaitGroup
		reads atomic.Int64
	)
	for g := range 2 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				id := orders[(i+g)%len(orders)]
				o, err := orderReads.Order(context.Background(), id)
				if err != nil || o.OrderID != id || len(o.Lines) == 0 {
					t.Errorf("order %s during the rebuild: %+v, %v", id, o, err)
					return
				}
				sku := skus[i%3] // the first three were stocked
				it, err := invReads.Item(context.Background(), sku)
				if err != nil || it.SKU != sku {
					t.Errorf("inventory %s during the rebuild: %+v, %v", sku, it, err)
					return
				}
				list, err := orderReads.Orders(context.Background(), queries.OrderFilter{Limit: 50})
				if err != nil || len(list) != len(orders) {
					t.Errorf("order list during the rebuild: %d orders, %v", len(list), err)
					return
				}
				reads.Add(3)
			}
		})
	}
	start := time.Now()
	for i := range 3 {
		if err := rebuildWithBatch(t, f, pool, 1+i); err != nil {
			t.Fatalf("rebuild: %v", err)
		}
	}
	// And the readers go on against the swapped-in tables.
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("no reads ran")
	}
	checkAgainstStore(t, f, pool, orders, skus)
	t.Logf("%d reads during 3 rebuilds in %s", reads.Load(), time.Since(start).Round(time.Millisecond))
}

func TestCompareWithReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	scenario(t, f)
	runUntil(t, NewRunner(f.store, pool, quietLog()), f.lastEventSeq(t))
	stop := startRunner(t, NewRunner(f.store, pool, quietLog()))
	defer stop()
	ctx := context.Background()

	t.Run("untouched read models equal the replay", func(t *testing.T) {
		diffs, err := CompareWithReplay(ctx, f.store, pool, quietLog())
		if err != nil {
			t.Fatalf("compare: %v", err)
		}
		if len(diffs) != 0 {
			t.Fatalf("%d differences, first %+v", len(diffs), diffs[0])
		}
	})
	t.Run("a row changed behind the engine's back differs", func(t *testing.T) {
		if _, err := pool.Exec(ctx, `UPDATE rm.inventory SET on_hand = on_hand + 1 WHERE sku = 'SKU-A'`); err != nil {
			t.Fatal(err)
		}
		// The orders' minute (and hour) buckets: two, or more when the
		// orders were placed across a minute's end. Each one deleted must
		// come back as a difference.
		var wantBuckets int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM rm.order_buckets WHERE metric = 'orders_placed'`).Scan(&wantBuckets); err != nil {
			t.Fatal(err)
		}
		if wantBuckets < 2 {
			t.Fatalf("%d orders_placed buckets before the delete, want at least an hour's and a minute's", wantBuckets)
		}
		if _, err := pool.Exec(ctx, `DELETE FROM rm.order_buckets WHERE metric = 'orders_placed'`); err != nil {
			t.Fatal(err)
		}
		diffs, err := ReplayComparison{Store: f.store, Pool: pool}.CompareWithReplay(ctx)
		if err != nil {
			t.Fatalf("compare: %v", err)
		}
		var inv, buckets int
		for _, d := range diffs {
			switch d.Table {
			case "inventory":
				inv++
				var live, replayed struct {
					OnHand int64 `json:"on_hand"`
				}
				_ = json.Unmarshal([]byte(d.Live), &live)
				_ = json.Unmarshal([]byte(d.Replayed), &replayed)
				if d.Key != "SKU-A" || replayed.OnHand == 0 || live.OnHand != replayed.OnHand+1 {
					t.Errorf("difference %+v", d)
				}
			case "order_buckets":
				buckets++
				if d.Live != "" || !strings.Contains(d.Key, "/orders_placed/") {
					t.Errorf("difference %+v", d)
				}
			default:
				t.Errorf("unexpected difference %+v", d)
			}
		}
		if inv != 1 || buckets != wantBuckets {
			t.Errorf("%d inventory and %d bucket differences, want 1 and %d: %+v", inv, buckets, wantBuckets, diffs)
		}
		noLeftoverSchemas(t, pool)
	})
}

func TestRebuildsOneAtATime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	scenario(t, f)
	live := NewRunner(f.store, pool, quietLog())
	stop := startRunner(t, live)
	defer stop()
	ctx := context.Background()
	b := NewRebuilds(f.store, pool, quietLog())
	admin := Admin{Runners: []*Runner{live}, Rebuilds: b}

	if err := b.StartRebuild(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("unknown projection: %v", err)
	}
	// Hold the rebuild lock, as another process's rebuild would.
	conn, unlock, err := lockRebuild(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.StartRebuild(ctx, MainProjection); !errors.Is(err, ErrRebuildInProgress) {
		t.Errorf("rebuild while another process rebuilds: %v", err)
	}
	if err := Rebuild(ctx, f.store, pool, nil, nil); !errors.Is(err, ErrRebuildInProgress) {
		t.Errorf("Rebuild while another process rebuilds: %v", err)
	}
	_ = conn
	unlock()

	if err := b.StartRebuild(ctx, MainProjection); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := b.StartRebuild(ctx, MainProjection); !errors.Is(err, ErrRebuildInProgress) {
		t.Errorf("second start: %v", err)
	}
	if got, err := admin.Projections(ctx); err != nil || got[0].State != StateRebuilding {
		// The rebuild may have finished already on a fast machine.
		if st, _ := b.RebuildStatus(ctx, MainProjection); st.State == queries.RebuildRunning {
			t.Errorf("projections while rebuilding: %+v, %v", got, err)
		}
	}
	b.Wait()
	st, err := b.RebuildStatus(ctx, MainProjection)
	if err != nil || st.State != queries.RebuildSucceeded || st.EventsApplied == 0 || st.EventsApplied != st.EventsTotal {
		t.Errorf("status after: %+v, %v", st, err)
	}
	if got, err := admin.Projections(ctx); err != nil || got[0].State == StateRebuilding {
		t.Errorf("projections after: %+v, %v", got, err)
	}
	if _, err := b.RebuildStatus(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("status of unknown projection: %v", err)
	}
}

func TestCancelledRebuildLeavesTheReadModelsAsTheyWere(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	scenario(t, f)
	runUntil(t, NewRunner(f.store, pool, quietLog()), f.lastEventSeq(t))
	before := dumpAll(t, pool)

	ctx, cancel := context.WithCancel(context.Background())
	conn, unlock, err := lockRebuild(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	err = rebuildOn(ctx, conn, f.store, pool, quietLog(), func(done, _ uint64) {
		if done >= 5 {
			cancel()
		}
	}, 1)
	unlock()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled rebuild: %v", err)
	}
	sameDump(t, before, dumpAll(t, pool))

	// The next one starts over from what the cancelled one left. The
	// cancelled one's connection died with its query, and Postgres ends
	// that session, and frees its lock, a moment after the client closed
	// it: until then a start is refused as in progress, as it should be.
	b := NewRebuilds(f.store, pool, quietLog())
	eventually(t, "a rebuild started after the cancelled one's lock is freed", func() bool {
		err := b.StartRebuild(context.Background(), MainProjection)
		if err != nil && !errors.Is(err, ErrRebuildInProgress) {
			t.Fatal(err)
		}
		return err == nil
	})
	b.Close()
	if err := b.StartRebuild(context.Background(), MainProjection); err == nil {
		t.Error("a closed Rebuilds started a rebuild")
	}
	if st, _ := b.RebuildStatus(context.Background(), MainProjection); st.State == queries.RebuildSucceeded {
		sameDump(t, before, dumpAll(t, pool))
		noLeftoverSchemas(t, pool)
	} else if st.State != queries.RebuildFailed {
		t.Errorf("status after Close: %+v", st)
	}
}

// TestRebuildHandsOverABatchWaitingOnTheSwap makes the live Runner's next
// batch wait on the swap for sure: the batch that was blocked on the old
// checkpoint row must land in the new read models.
func TestRebuildHandsOverABatchWaitingOnTheSwap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool := newPool(t)
	scenario(t, f)
	runUntil(t, NewRunner(f.store, pool, quietLog()), f.lastEventSeq(t))
	warn := &warnings{}
	stop := startRunner(t, NewRunner(f.store, pool, slog.New(warn)))

	var placed string
	waited := false
	ctx := context.WithValue(context.Background(), beforeRenameKey{}, func() {
		placed = f.place(t, line("SKU-A", 1))
		// Until the live Runner's batch of it waits for the checkpoint row.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			var n int
			err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND query LIKE '%rm.checkpoints%' AND datname = current_database()`).Scan(&n)
			if err != nil {
				t.Errorf("pg_stat_activity: %v", err)
				return
			}
			if n > 0 {
				waited = true
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	if err := Rebuild(ctx, f.store, pool, quietLog(), nil); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if !waited {
		t.Fatal("the live Runner never waited on the swap")
	}
	if st := f.settle(t, placed); st.Status != domain.StatusConfirmed {
		t.Fatalf("order placed during the swap is %s", st.Status)
	}
	f.quiesce(t)
	last := f.lastEventSeq(t)
	eventually(t, "live runner at the last event", func() bool {
		cp, err := Checkpoints(context.Background(), pool, MainProjection)
		return err == nil && eqSeqs(cp, last)
	})
	stop()
	fresh := newPool(t)
	runUntil(t, NewRunner(f.store, fresh, quietLog()), last)
	sameDump(t, dumpAll(t, fresh), dumpAll(t, pool))
	noLeftoverSchemas(t, pool)
	if w := warn.all(); len(w) > 0 {
		t.Errorf("the live runner logged %d warnings, first: %s", len(w), w[0])
	}
}
