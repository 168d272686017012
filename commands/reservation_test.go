package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// flashSale places buyers single-unit orders concurrently, spread over the
// given engines, and returns how many were confirmed and rejected.
func flashSale(t *testing.T, engines []*engine, sku string, buyers int) (confirmed, rejected int) {
	t.Helper()
	ids := make([]string, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Go(func() { ids[i] = engines[i%len(engines)].place(t, line(sku, 1)) })
	}
	wg.Wait()
	statuses := make([]domain.OrderStatus, buyers)
	for i := range buyers {
		wg.Go(func() { statuses[i] = engines[0].settle(t, ids[i]) })
	}
	wg.Wait()
	for i, s := range statuses {
		switch s {
		case domain.StatusConfirmed:
			confirmed++
		case domain.StatusRejected:
			rejected++
		default:
			t.Errorf("order %s left in status %q; %s", ids[i], s, explainPending(t, engines, ids[i], sku))
		}
	}
	return confirmed, rejected
}

// explainPending says where the reservation of a pending order stopped, so
// a failure names the stage that lost it.
func explainPending(t *testing.T, engines []*engine, id, sku string) string {
	s := engines[0].sku(t, sku)
	r, held := s.Held.Qty(domain.ReservationID(id, sku))
	pending, unacked, err := engines[0].app.Store.Backlog(context.Background(), eventstore.ReservationConsumers()[eventstore.PartitionOf(sku)])
	sp, su, _ := engines[0].app.Store.Backlog(context.Background(), eventstore.SagaConsumer)
	return fmt.Sprintf("held by the SKU: %v (%d), SKU through requests %v; now %s; partition backlog %d pending %d unacked (%v); saga %d/%d",
		held, r, s.RequestSeqs, engines[len(engines)-1].order(t, id).Status, pending, unacked, err, sp, su)
}

// TestFlashSaleConfirmsExactlyTheStock: 1000 concurrent single-unit orders
// on a SKU with 100 in stock, with one engine, and with two complete engines
// (two processor sets) racing on one server.
func TestFlashSaleConfirmsExactlyTheStock(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprint(n, " engines"), func(t *testing.T) {
			ns, nc := testnats.Start(t)
			engines := []*engine{newEngine(t, nc, time.Hour, true)}
			for len(engines) < n {
				engines = append(engines, newEngine(t, testnats.Connect(t, ns), time.Hour, true))
			}
			engines[0].setStock(t, "HOT", 100)
			confirmed, rejected := flashSale(t, engines, "HOT", 1000)
			if confirmed != 100 || rejected != 900 {
				t.Errorf("confirmed %d, rejected %d; want 100 and 900", confirmed, rejected)
			}
			if s := engines[n-1].sku(t, "HOT"); s.OnHand != 100 || s.Reserved != 100 {
				t.Errorf("SKU on_hand %d reserved %d, want 100/100", s.OnHand, s.Reserved)
			}
		})
	}
}

// onShardZero makes e's new ids, orders' included, fall on shard 0.
// Must be called before e's workers start.
func onShardZero(e *engine) {
	newID := e.app.NewID
	e.app.NewID = func() string {
		for {
			if id := newID(); e.app.Store.ShardOf(id) == 0 {
				return id
			}
		}
	}
}

// TestOrdersOnTheLastUnitsAreServedFirstComeFirstServed: a SKU decides the
// requests of one shard in their stream order. Requests of orders on
// different shards have no order among them (each shard's processors run
// on their own), so the orders here are all on one shard.
func TestOrdersOnTheLastUnitsAreServedFirstComeFirstServed(t *testing.T) {
	_, nc := testnats.Start(t)
	e := newEngine(t, nc, time.Hour, false)
	onShardZero(e)
	e.startWorkers(t)
	e.setStock(t, "LAST", 3)
	// Placed one after another: 2 fits, the next 2 does not (1 left) even
	// though the 1 after it would; the 1 gets the last unit.
	var ids []string
	for _, qty := range []int64{2, 2, 1, 1} {
		ids = append(ids, e.place(t, line("LAST", qty)))
	}
	want := []domain.OrderStatus{domain.StatusConfirmed, domain.StatusRejected, domain.StatusConfirmed, domain.StatusRejected}
	for i, id := range ids {
		if got := e.settle(t, id); got != want[i] {
			t.Errorf("order %d: %s, want %s", i, got, want[i])
		}
	}
}

func TestMultiLineOrderIsAllOrNothing(t *testing.T) {
	_, nc := testnats.Start(t)
	e := newEngine(t, nc, time.Hour, true)
	e.setStock(t, "PLENTY", 5)
	e.setStock(t, "NONE", 0)
	id := e.place(t, line("PLENTY", 2), line("NONE", 1))
	if got := e.settle(t, id); got != domain.StatusRejected {
		t.Fatalf("order %s, want rejected", got)
	}
	eventually(t, "PLENTY's partial reservation released", func() bool { return e.sku(t, "PLENTY").Reserved == 0 })
	ok := e.place(t, line("PLENTY", 5))
	if got := e.settle(t, ok); got != domain.StatusConfirmed {
		t.Errorf("whole stock after the release: %s, want confirmed", got)
	}
}

func TestCancelWhilePendingReleasesALateGrant(t *testing.T) {
	_, nc := testnats.Start(t)
	e := newEngine(t, nc, time.Hour, false) // no processors yet: requests stay in flight
	e.setStock(t, "SLOW", 1)
	id := e.place(t, line("SLOW", 1))
	if _, err := e.app.CancelOrder(context.Background(), commandsMeta(e), id, cancelBody()); err != nil {
		t.Fatalf("cancel while pending: %v", err)
	}
	e.startWorkers(t)
	rid := domain.ReservationID(id, "SLOW")
	eventually(t, "the late grant released", func() bool {
		s := e.sku(t, "SLOW")
		_, held := s.Held.Qty(rid)
		return !held && s.Reserved == 0 && skuDecisions(t, e, "SLOW")[rid]["ReservationReleased"] == 1
	})
	if d := skuDecisions(t, e, "SLOW")[rid]; d["StockReserved"] != 1 {
		t.Errorf("decisions on the reservation: %v, want a grant then its release", d)
	}
	if s := e.order(t, id).Status; s != domain.StatusCancelled {
		t.Errorf("order %s after the late grant, want cancelled", s)
	}
}

func TestShipmentCommitsTheReservation(t *testing.T) {
	_, nc := testnats.Start(t)
	e := newEngine(t, nc, time.Hour, true)
	e.setStock(t, "BOX", 10)
	id := e.place(t, line("BOX", 4))
	if got := e.settle(t, id); got != domain.StatusConfirmed {
		t.Fatalf("order %s, want confirmed", got)
	}
	ctx := context.Background()
	if _, err := e.app.PayOrder(ctx, commandsMeta(e), id, payBody(4000)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.ShipOrder(ctx, commandsMeta(e), id, shipBody()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "on-hand down for good", func() bool {
		s := e.sku(t, "BOX")
		return s.OnHand == 6 && s.Reserved == 0
	})
}

func TestExpiryFiresAcrossAnEngineRestart(t *testing.T) {
	dir := t.TempDir()
	const ttl = 2 * time.Second
	ns, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc := testnats.ConnectInProcess(t, ns)
	first := newEngine(t, nc, ttl, true)
	first.setStock(t, "TIMED", 1)
	id := first.place(t, line("TIMED", 1))
	if got := first.settle(t, id); got != domain.StatusConfirmed {
		t.Fatalf("order %s, want confirmed", got)
	}
	// The whole engine goes down, JetStream included, before the TTL passes.
	first.stop()
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()
	time.Sleep(ttl + time.Second)

	ns, err = eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	second := newEngine(t, testnats.ConnectInProcess(t, ns), ttl, true)
	eventually(t, "the order expired", func() bool { return second.order(t, id).Status == domain.StatusExpired })
	eventually(t, "its stock returned", func() bool { return second.sku(t, "TIMED").Reserved == 0 })
}

// reservationMsg reads a delivered reservation request.
func reservationMsg(t *testing.T, m jetstream.Msg) eventstore.ReservationMsg {
	t.Helper()
	var r domain.ReservationRequest
	meta, err := m.Metadata()
	if err == nil {
		err = json.Unmarshal(m.Data(), &r)
	}
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.ReservationMsg{Seq: meta.Sequence.Stream, Request: r}
}

// waitingBacklog starts an engine without processors, sets sku's stock and
// places that many single-unit orders on it, whose requests wait. The
// orders are all on shard 0, so their requests are in one partition
// consumer, in the order they were placed (requests of different shards
// have no order among them).
func waitingBacklog(t *testing.T, sku string, stock int64, orders int) (*server.Server, *engine, []string) {
	t.Helper()
	ns, nc := testnats.Start(t)
	e := newEngine(t, nc, time.Hour, false)
	onShardZero(e)
	e.setStock(t, sku, stock)
	ids := make([]string, orders)
	for i := range ids {
		ids[i] = e.place(t, line(sku, 1))
	}
	return ns, e, ids
}

// victimFetch takes up to n of sku's partition's requests from the durable
// consumer as a processor of its own would (connection victim, priority
// group "processor"), and does not acknowledge them.
func victimFetch(t *testing.T, e *engine, victim natsConn, sku string, n int) []eventstore.ReservationMsg {
	t.Helper()
	js, err := jetstream.New(victim)
	if err != nil {
		t.Fatal(err)
	}
	p := eventstore.PartitionOf(sku)
	if _, err := e.app.Store.ReservationConsumer(context.Background(), 0, p); err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(context.Background(), e.app.Store.Stream(0), eventstore.ReservationConsumers()[p])
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second), jetstream.FetchPriorityGroup("processor"))
	if err != nil {
		t.Fatal(err)
	}
	var reqs []eventstore.ReservationMsg
	for m := range batch.Messages() {
		reqs = append(reqs, reservationMsg(t, m))
	}
	return reqs
}

// TestHandOverKeepsTheSKUsOrder: a processor that took a SKU's first two
// requests dies holding them; the processor that takes the partition over
// is delivered the third first, and must still decide the first two before
// it (the first buyer gets the last unit).
func TestHandOverKeepsTheSKUsOrder(t *testing.T) {
	ns, e, ids := waitingBacklog(t, "HANDOVER", 1, 3)
	victim := testnats.Connect(t, ns)
	if got := victimFetch(t, e, victim, "HANDOVER", 2); len(got) != 2 {
		t.Fatalf("the victim got %d requests, want 2", len(got))
	}
	victim.Close()
	e.startWorkers(t)
	for i, id := range ids {
		want := domain.StatusRejected
		if i == 0 {
			want = domain.StatusConfirmed
		}
		if got := e.settle(t, id); got != want {
			t.Errorf("order %d: %s, want %s", i, got, want)
		}
	}
}

func TestProcessorKilledBeforeAckingGrantsNothingTwice(t *testing.T) {
	ns, e, ids := waitingBacklog(t, "CRASH", 50, 80)
	// A processor takes the partition's batch, appends its outcomes and dies
	// before acknowledging: same durable consumer, its own connection.
	victim := testnats.Connect(t, ns)
	reqs := victimFetch(t, e, victim, "CRASH", 500)
	if len(reqs) == 0 {
		t.Fatal("the victim got no requests")
	}
	if err := e.app.ProcessReservations(context.Background(), reqs); err != nil {
		t.Fatal(err)
	}
	victim.Close() // killed: nothing acknowledged

	// A fresh processor set gets the same requests again once the pin and
	// the ack wait lapse.
	e.startWorkers(t)
	for _, id := range ids {
		e.settle(t, id)
	}
	waitForProcessors(t, e)
	s := e.sku(t, "CRASH")
	granted := s.Held.Len()
	if s.Reserved != 50 || granted != 50 || s.OnHand != 50 {
		t.Errorf("reserved %d, held reservations %d, on_hand %d; want 50/50/50", s.Reserved, granted, s.OnHand)
	}
	// Every reservation id was decided exactly once in the SKU's history.
	seen := map[string]int{}
	err := e.app.Store.History(context.Background(), "inventory.CRASH", func(_ uint64, env eventstore.Envelope) error {
		ev, err := domain.DecodeSKUEvent(env.Type, env.SchemaVersion, env.Data)
		if err != nil {
			return err
		}
		decisions := []domain.SKUEvent{ev}
		if batch, ok := ev.(domain.ReservationsDecided); ok {
			decisions = decisions[:0]
			for _, d := range batch.Decisions {
				decisions = append(decisions, d.Event())
			}
		}
		for _, d := range decisions {
			switch d := d.(type) {
			case domain.StockReserved:
				seen[d.ReservationID]++
			case domain.ReservationRefused:
				seen[d.ReservationID]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("reservation %s decided %d times", id, n)
		}
	}
	if len(seen) != 80 {
		t.Errorf("%d reservations decided, want 80", len(seen))
	}
}

// skuDecisions counts, from sku's stored history, the decisions on each
// reservation id by event type.
func skuDecisions(t *testing.T, e *engine, sku string) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	count := func(id, typ string) {
		if out[id] == nil {
			out[id] = map[string]int{}
		}
		out[id][typ]++
	}
	err := e.app.Store.History(context.Background(), "inventory."+sku, func(_ uint64, env eventstore.Envelope) error {
		ev, err := domain.DecodeSKUEvent(env.Type, env.SchemaVersion, env.Data)
		if err != nil {
			return err
		}
		batch, ok := ev.(domain.ReservationsDecided)
		if !ok {
			return nil
		}
		for _, d := range batch.Decisions {
			switch d := d.Event().(type) {
			case domain.StockReserved:
				count(d.ReservationID, d.EventType())
			case domain.ReservationRefused:
				count(d.ReservationID, d.EventType())
			case domain.ReservationReleased:
				count(d.ReservationID, d.EventType())
			case domain.ReservationCommitted:
				count(d.ReservationID, d.EventType())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRedeliveredBatchDecidesNothingTwice: a batch that reserves and
// releases one order's unit and reserves another's, handled a second time
// (a redelivery after a lost acknowledgement), decides nothing: the SKU no
// longer remembers the released reservation, and only its request sequence
// keeps the first order from being granted again. The state equals a cold
// replay of the SKU's history.
func TestRedeliveredBatchDecidesNothingTwice(t *testing.T) {
	ns, e, _ := waitingBacklog(t, "REDO", 2, 0)
	first := e.place(t, line("REDO", 1))
	if _, err := e.app.CancelOrder(context.Background(), commandsMeta(e), first, cancelBody()); err != nil {
		t.Fatal(err)
	}
	second := e.place(t, line("REDO", 1))
	reqs := victimFetch(t, e, testnats.Connect(t, ns), "REDO", 10)
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want reserve, release, reserve", len(reqs))
	}
	if err := e.app.ProcessReservations(context.Background(), reqs); err != nil {
		t.Fatal(err)
	}
	once := e.sku(t, "REDO")
	for range 2 {
		if err := e.app.ProcessReservations(context.Background(), reqs); err != nil {
			t.Fatal(err)
		}
	}
	again := e.sku(t, "REDO")
	if !reflect.DeepEqual(once, again) {
		t.Errorf("redelivery changed the SKU:\n once %+v\nagain %+v", once, again)
	}
	held, ok := again.Held.Qty(domain.ReservationID(second, "REDO"))
	if again.Reserved != 1 || again.Held.Len() != 1 || !ok || held != 1 {
		t.Errorf("reserved %d in %d reservations; want the second order's unit only", again.Reserved, again.Held.Len())
	}
	want := map[string]map[string]int{
		domain.ReservationID(first, "REDO"):  {"StockReserved": 1, "ReservationReleased": 1},
		domain.ReservationID(second, "REDO"): {"StockReserved": 1},
	}
	if got := skuDecisions(t, e, "REDO"); !reflect.DeepEqual(got, want) {
		t.Errorf("decisions %v, want %v", got, want)
	}
	// A cold replay (another engine, nothing cached) folds to the same state.
	cold := newEngine(t, testnats.Connect(t, ns), time.Hour, false).sku(t, "REDO")
	if !reflect.DeepEqual(cold, again) {
		t.Errorf("cold replay differs:\n cold %+v\n live %+v", cold, again)
	}
}
