package domain

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkDecideReserve measures one reservation decided and applied on
// a hot SKU that already remembers 10k decisions: the cost is dominated by
// EvolveSKU's copy-on-write of the reservations map.
func BenchmarkDecideReserve(b *testing.B) {
	s := SKU{SKU: testSKU, OnHand: MaxStock, Created: true, Reservations: make(map[string]Reservation, 10_000)}
	for i := range 10_000 {
		id := fmt.Sprintf("%s-%d", testOrderID, i)
		s.Reservations[id] = Reservation{Qty: 1, State: ReservationStateHeld}
		s.Reserved++
	}
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
// on a hot SKU that already remembers 100k decisions, ten times the
// memory of BenchmarkDecideReserve: the map is copied once per batch,
// not once per reserve. ns/reserve compares with BenchmarkDecideReserve's
// ns/op.
func BenchmarkDecideSKUBatch(b *testing.B) {
	const held, batch = 100_000, 1000
	s := SKU{SKU: testSKU, OnHand: MaxStock, Created: true, Reservations: make(map[string]Reservation, held)}
	for i := range held {
		id := fmt.Sprintf("%s-%d", testOrderID, i)
		s.Reservations[id] = Reservation{Qty: 1, State: ReservationStateHeld}
		s.Reserved++
	}
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
