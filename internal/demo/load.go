package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orderengine/engine/internal/host"

	"github.com/cockroachdb/errors"
)

// demoParams are engine demo's flags and where the engine listens.
type demoParams struct {
	base, token string
	rate        float64
	skus        int
	flashEvery  time.Duration
	pace        time.Duration
}

// maxDemoOrders bounds the orders whose life the load is playing out at
// once; at the cap a tick is skipped rather than queued.
const maxDemoOrders = 2000

// demoLoad is a synthetic shop: customers order from a catalogue, most pay,
// some cancel or walk away (their reservation expires), paid orders ship
// and are delivered; now and then one SKU goes on a flash sale that sells
// out. It speaks the public API, as a real frontend would.
type demoLoad struct {
	demoParams
	out     io.Writer
	log     *slog.Logger
	client  *http.Client
	catalog []demoSKU
	flash   atomic.Value // the SKU on sale now, which the restocker leaves alone
	live    chan struct{}
	n       struct {
		placed, confirmed, rejected, paid, shipped, delivered, cancelled, abandoned, skipped atomic.Int64
		returned                                                                             atomic.Int64
	}
}

type demoSKU struct {
	sku   string
	price int64 // in minor units of any currency
}

func newDemoLoad(p demoParams, out io.Writer, log *slog.Logger) *demoLoad {
	d := &demoLoad{demoParams: p, out: out, log: log, live: make(chan struct{}, maxDemoOrders),
		client: &http.Client{Timeout: 30 * time.Second}}
	d.flash.Store("")
	items := []string{"TEE", "HOODIE", "CAP", "MUG", "SOCKS", "TOTE", "BOTTLE", "SCARF", "BEANIE", "JACKET"}
	colors := []string{"BLACK", "WHITE", "NAVY", "RED", "GREY", "GREEN", "SAND", "PINK", "OLIVE", "TEAL"}
	for i := range p.skus {
		sku := fmt.Sprintf("%s-%s-%d", items[i%len(items)], colors[(i/len(items))%len(colors)], i/(len(items)*len(colors))+1)
		d.catalog = append(d.catalog, demoSKU{sku: sku, price: 500 + int64(rand.N(60))*100 - 1})
	}
	return d
}

// run seeds the catalogue, then places orders at the rate until ctx ends.
func (d *demoLoad) run(ctx context.Context) error {
	for _, s := range d.catalog {
		if err := d.call(ctx, http.MethodPut, "/v1/inventory/"+s.sku, map[string]int64{"on_hand": 20 + rand.Int64N(180)}, nil); err != nil {
			return errors.Wrapf(err, "seed %s", s.sku)
		}
	}
	_, _ = fmt.Fprintf(d.out, "demo: seeded %d SKUs\n", len(d.catalog))
	go host.Every(ctx, 5*time.Second, d.restock)
	go host.Every(ctx, d.flashEvery, d.flashSale)
	go host.Every(ctx, 10*time.Second, d.report)
	tick := time.NewTicker(time.Duration(float64(time.Second) / d.rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			d.start(ctx, d.randomLines())
		}
	}
}

// start plays one order's life in its own goroutine, unless as many are
// being played as the load allows.
func (d *demoLoad) start(ctx context.Context, lines []map[string]any) {
	select {
	case d.live <- struct{}{}:
		go func() {
			defer func() { <-d.live }()
			d.order(ctx, lines)
		}()
	default:
		d.n.skipped.Add(1)
	}
}

func (d *demoLoad) randomLines() []map[string]any {
	var lines []map[string]any
	for _, i := range rand.Perm(len(d.catalog))[:1+rand.IntN(min(3, len(d.catalog)))] {
		s := d.catalog[i]
		lines = append(lines, map[string]any{"sku": s.sku, "qty": 1 + rand.IntN(3), "unit_price_cents": s.price})
	}
	return lines
}

// order places an order and, once it is confirmed, pays, ships and
// delivers it, or cancels it, or leaves it unpaid to expire.
func (d *demoLoad) order(ctx context.Context, lines []map[string]any) {
	currency := []string{"USD", "USD", "USD", "EUR", "EUR", "GBP"}[rand.IntN(6)]
	var o struct {
		OrderID    string `json:"order_id"`
		Status     string `json:"status"`
		TotalCents int64  `json:"total_cents"`
	}
	body := map[string]any{"customer_id": "cust-" + strconv.Itoa(1+rand.IntN(500)), "currency": currency, "lines": lines}
	if err := d.call(ctx, http.MethodPost, "/v1/orders", body, &o, "Prefer", "wait=5"); err != nil {
		d.warn(ctx, "place order", err)
		return
	}
	d.n.placed.Add(1)
	switch o.Status {
	case "rejected":
		d.n.rejected.Add(1)
		return
	case "confirmed":
		d.n.confirmed.Add(1)
	default:
		return
	}
	step := func(counter *atomic.Int64, action string, body any) bool {
		// Pauses of half to twice the pace, so the steps spread out.
		pause := d.pace/2 + rand.N(d.pace*3/2)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		if err := d.call(ctx, http.MethodPost, "/v1/orders/"+o.OrderID+"/"+action, body, nil); err != nil {
			var refused *demoRefusal
			if (action == "payment" || action == "cancellation") && errors.As(err, &refused) && refused.status == http.StatusConflict {
				// Paid or cancelled too late: the reservation's TTL (from
				// its grant) ran out first and the order expired, as in a
				// real shop (seen under -race with the test's 1 s TTL).
				d.n.abandoned.Add(1)
				return false
			}
			d.warn(ctx, action, err)
			return false
		}
		counter.Add(1)
		return true
	}
	switch r := rand.Float64(); {
	case r < 0.08:
		step(&d.n.cancelled, "cancellation", map[string]string{"reason": "changed my mind"})
		return
	case r < 0.18:
		d.n.abandoned.Add(1) // its reservation expires after the TTL
		return
	}
	if !step(&d.n.paid, "payment", map[string]any{"amount_cents": o.TotalCents, "payment_ref": "pay-" + o.OrderID}) {
		return
	}
	if rand.Float64() < 0.05 {
		step(&d.n.cancelled, "cancellation", map[string]string{"reason": "refund requested"})
		return
	}
	if step(&d.n.shipped, "shipment", map[string]string{"carrier": "DHL", "tracking_number": "JD" + strconv.Itoa(rand.IntN(1e9))}) && rand.Float64() < 0.95 &&
		step(&d.n.delivered, "delivery", map[string]any{}) && rand.Float64() < 0.05 {
		// A few deliveries come back in part: revenue on the dashboard is
		// net of their refunds.
		step(&d.n.returned, "returns", map[string]any{"lines": []map[string]any{{"sku": lines[0]["sku"], "qty": 1}}, "reason": "damaged in transit"})
	}
}

// flashSale puts a small stock of one SKU on sale and lets a crowd of
// orders race for it: most are rejected, which the dashboard shows.
func (d *demoLoad) flashSale(ctx context.Context) {
	s := d.catalog[rand.IntN(len(d.catalog))]
	d.flash.Store(s.sku)
	defer d.flash.Store("")
	stock := 30 + rand.Int64N(30)
	if err := d.call(ctx, http.MethodPut, "/v1/inventory/"+s.sku, map[string]int64{"on_hand": stock}, nil); err != nil {
		// on_hand may not go below what is reserved: try the next time.
		d.warn(ctx, "flash sale", err)
		return
	}
	_, _ = fmt.Fprintf(d.out, "demo: flash sale of %d %s\n", stock, s.sku)
	for range 4 * stock {
		d.start(ctx, []map[string]any{{"sku": s.sku, "qty": 1, "unit_price_cents": s.price / 2}})
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// restock tops up the SKUs about to run out (but the one on sale), so
// that the load goes on; those between leave the low-stock list busy.
func (d *demoLoad) restock(ctx context.Context) {
	var page struct {
		Items []struct {
			SKU string `json:"sku"`
		} `json:"items"`
	}
	if err := d.call(ctx, http.MethodGet, "/v1/inventory?available_below=3&limit=200", nil, &page); err != nil {
		d.warn(ctx, "restock", err)
		return
	}
	for _, it := range page.Items {
		if it.SKU == d.flash.Load().(string) {
			continue
		}
		if err := d.call(ctx, http.MethodPost, "/v1/inventory/"+it.SKU+"/restock", map[string]int64{"qty": 50 + rand.Int64N(100)}, nil); err != nil {
			d.warn(ctx, "restock", err)
		}
	}
}

func (d *demoLoad) report(context.Context) {
	n := &d.n
	_, _ = fmt.Fprintf(d.out, "demo: placed %d (confirmed %d, rejected %d), paid %d, shipped %d, delivered %d (returned in part %d), cancelled %d, left to expire %d; %d in play, %d ticks skipped\n",
		n.placed.Load(), n.confirmed.Load(), n.rejected.Load(), n.paid.Load(), n.shipped.Load(), n.delivered.Load(), n.returned.Load(),
		n.cancelled.Load(), n.abandoned.Load(), len(d.live), n.skipped.Load())
}

func (d *demoLoad) warn(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		d.log.Warn("demo: "+what+" failed", "err", err)
	}
}

// call sends a JSON request with the load's token (and a fresh
// Idempotency-Key, as a careful client does) and decodes a 2xx answer into
// out; any other answer is an error carrying the problem's text.
func (d *demoLoad) call(ctx context.Context, method, path string, body, out any, header ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return errors.Wrap(err, "encode request")
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, rd)
	if err != nil {
		return errors.Wrap(err, "new request")
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "demo-"+strconv.FormatUint(rand.Uint64(), 36))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := d.client.Do(req)
	if err != nil {
		return errors.Wrapf(err, "%s %s", method, path)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return errors.Wrapf(err, "%s %s: read answer", method, path)
	}
	if res.StatusCode/100 != 2 {
		return &demoRefusal{status: res.StatusCode, what: fmt.Sprintf("%s %s: %d %s", method, path, res.StatusCode, strings.TrimSpace(string(b)))}
	}
	if out == nil {
		return nil
	}
	return errors.Wrapf(json.Unmarshal(b, out), "%s %s: decode answer", method, path)
}

// demoRefusal is a non-2xx answer: its status and the problem's text.
type demoRefusal struct {
	status int
	what   string
}

func (e *demoRefusal) Error() string { return e.what }

// Params are the synthetic shop's settings, for a caller that runs the
// engine itself (the README's dashboard screenshot): Base is the API's
// base URL, Token an admin token; the rest are engine demo's flags.
type Params struct {
	Base, Token string
	Rate        float64
	SKUs        int
	FlashEvery  time.Duration
	Pace        time.Duration
}

// Drive plays the synthetic shop against the API at p.Base until ctx ends,
// writing progress lines to out; it returns ctx's error or the load's.
func Drive(ctx context.Context, p Params, out io.Writer, log *slog.Logger) error {
	return newDemoLoad(demoParams{base: p.Base, token: p.Token, rate: p.Rate, skus: p.SKUs, flashEvery: p.FlashEvery, pace: p.Pace}, out, log).run(ctx)
}
