package commands_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/internal/testnats"
)

// clock is a settable time source, so expiry can be driven by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRandomInterleavingsKeepInventoryConsistent drives random sequences of
// place, cancel, pay, ship, expire and restock while the processors run,
// checks 0 <= reserved <= on_hand after every step, and at the end, once
// everything settled, that each SKU's reserved equals the sum of the live
// reservations (confirmed and paid orders) and on_hand the stock set plus
// restocks minus shipments.
func TestRandomInterleavingsKeepInventoryConsistent(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			_, nc := testnats.Start(t)
			e := newEngine(t, nc, time.Hour, false)
			clk := &clock{t: time.Now().UTC()}
			e.app.Now = clk.Now
			e.startWorkers(t)
			rng := rand.New(rand.NewPCG(seed, 42))
			skus := []string{"A", "B", "C"}
			onHand := map[string]int64{}
			for _, s := range skus {
				e.setStock(t, s, 6)
				onHand[s] = 6
			}
			var orders []string
			ctx := context.Background()
			pick := func() string { return orders[rng.IntN(len(orders))] }
			ignore := func(err error) {
				if err != nil && !errors.Is(err, domain.ErrInvalidTransition) {
					t.Fatalf("unexpected error: %v", err)
				}
			}
			for step := range 150 {
				switch op := rng.IntN(10); {
				case op < 4 || len(orders) == 0:
					lines := []domain.Line{line(skus[rng.IntN(3)], 1+rng.Int64N(3))}
					if other := skus[rng.IntN(3)]; rng.IntN(3) == 0 && other != lines[0].SKU {
						lines = append(lines, line(other, 1+rng.Int64N(2)))
					}
					orders = append(orders, e.place(t, lines...))
				case op == 4:
					_, err := e.app.CancelOrder(ctx, commandsMeta(e), pick(), cancelBody())
					ignore(err)
				case op == 5:
					id := pick()
					_, err := e.app.PayOrder(ctx, commandsMeta(e), id, payBody(e.order(t, id).TotalCents))
					if errors.Is(err, domain.ErrValidation) {
						err = nil // not confirmed yet: total not checked before state
					}
					ignore(err)
				case op == 6:
					_, err := e.app.ShipOrder(ctx, commandsMeta(e), pick(), shipBody())
					ignore(err)
				case op == 7:
					clk.advance(2 * time.Hour)
					_, err := e.app.ExpireDue(ctx, pick())
					ignore(err)
				case op == 8:
					s := skus[rng.IntN(3)]
					if _, err := e.app.Restock(ctx, commandsMeta(e), s, restockBody(2)); err != nil {
						t.Fatal(err)
					}
					onHand[s] += 2
				default:
					time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
				}
				for _, s := range skus {
					if st := e.sku(t, s); st.Reserved < 0 || st.Reserved > st.OnHand {
						t.Fatalf("step %d: %s reserved %d on_hand %d", step, s, st.Reserved, st.OnHand)
					}
				}
			}
			for _, id := range orders {
				e.settle(t, id)
			}
			waitForProcessors(t, e)
			live := map[string]int64{}
			shipped := map[string]int64{}
			for _, id := range orders {
				o := e.order(t, id)
				for _, l := range o.Lines {
					switch o.Status {
					case domain.StatusConfirmed, domain.StatusPaid:
						live[l.SKU] += l.Qty
					case domain.StatusShipped, domain.StatusDelivered:
						shipped[l.SKU] += l.Qty
					}
				}
			}
			for _, s := range skus {
				st := e.sku(t, s)
				if st.Reserved != live[s] || st.OnHand != onHand[s]-shipped[s] {
					t.Errorf("%s: reserved %d on_hand %d; want %d and %d", s, st.Reserved, st.OnHand, live[s], onHand[s]-shipped[s])
				}
			}
		})
	}
}
