package domain

import (
	"fmt"
	"testing"
	"time"
)

// heldSKU returns a SKU holding n reservations of one unit.
func heldSKU(n int) SKU {
	s := SKU{SKU: testSKU, OnHand: MaxStock, Created: true}
	var w heldCOW
	for i := range n {
		w.put(&s.Held, fmt.Sprintf("%s-%d", testOrderID, i), 1)
		s.Reserved++
	}
	return s
}

// BenchmarkDecideReserve measures one reservation decided and applied on
// a hot SKU that holds 10k reservations: EvolveSKU copies the table of
// shards and the one shard it writes, not the whole held set.
func BenchmarkDecideReserve(b *testing.B) {
	s := heldSKU(10_000)
	c := Reserve{SKU: testSKU, ReservationID: ReservationID(testOrderID, "new"), OrderID: testOrderID, Qty: 1, At: t0}
	b.ReportAllocs()
	for b.Loop() {
		events, err := DecideSKU(s, c)
		if err != nil || len(events) != 1 {
			b.Fatal(events, err)
		}
		_ = EvolveSKU(s, events[0])
	}
}

// BenchmarkDecideSKUBatch measures a processor draining 1000 reserves
// on a hot SKU that holds 100k reservations, ten times the memory of
// BenchmarkDecideReserve: each shard is copied once per batch, not once
// per reserve. ns/reserve compares with BenchmarkDecideReserve's ns/op.
func BenchmarkDecideSKUBatch(b *testing.B) {
	const held, batch = 100_000, 1000
	s := heldSKU(held)
	cmds := make([]SKUCommand, batch)
	for i := range cmds {
		id := fmt.Sprintf("%s-new-%d", testOrderID, i)
		cmds[i] = Reserve{SKU: testSKU, ReservationID: id, OrderID: testOrderID, Qty: 1, At: t0}
	}
	b.ReportAllocs()
	for b.Loop() {
		// The input is never modified, so every iteration starts afresh.
		_, events, _ := DecideSKUBatch(s, cmds)
		if len(events) != batch {
			b.Fatalf("%d events", len(events))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/reserve")
}

func BenchmarkDecidePlaceOrder(b *testing.B) {
	for _, n := range []int{1, 10, MaxLines} {
		c := PlaceOrder{OrderID: testOrderID, CustomerID: "c1", Currency: "USD", At: t0.Add(time.Second)}
		for i := range n {
			c.Lines = append(c.Lines, Line{SKU: fmt.Sprintf("sku-%d", i), Qty: 3, UnitPriceCents: 1999})
		}
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				events, err := DecideOrder(Order{}, c)
				if err != nil {
					b.Fatal(err)
				}
				_ = EvolveOrder(Order{}, events[0])
			}
		})
	}
}

// BenchmarkDecideDrain is engine bench's reserve-drain without the store:
// 100,000 single-unit reserves on one SKU with 50,000 in stock, decided
// as a processor does, in batches of 1,000 against the state the previous
// batch left. Half are granted (the held set grows to 50,000), half
// refused. ns/decision compares with reserve-drain's decisions/s.
func BenchmarkDecideDrain(b *testing.B) {
	const requests, batch = 100_000, 1000
	cmds := make([]SKUCommand, requests)
	for i := range cmds {
		id := fmt.Sprintf("01890a5d-ac96-774b-bcce-%012d", i)
		cmds[i] = Reserve{SKU: testSKU, ReservationID: id + "-" + testSKU, OrderID: id, Qty: 1, At: t0}
	}
	start := EvolveSKU(SKU{}, OnHandSet{SKU: testSKU, OnHand: requests / 2, At: t0})
	b.ReportAllocs()
	for b.Loop() {
		s := start
		for i := 0; i < requests; i += batch {
			s, _, _ = DecideReservations(s, cmds[i:i+batch], 0, uint64(i+batch), t0)
		}
		if s.Reserved != requests/2 {
			b.Fatalf("reserved %d", s.Reserved)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*requests), "ns/decision")
}
