package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/testnats"
)

// answerBound is how soon after nats-server goes away every command must
// be answered, in tests. The goal is 1 s and an idle machine answers within
// 0.1 s (BENCHMARKS.md); the margin is for the race detector on a machine
// shared with other builds, where the HTTP server alone has been seen to
// take 2 s. Before the connection watch the answer took the whole 10 s
// request timeout.
const answerBound = 5 * time.Second

// lossCall is one keyed POST /v1/orders of the NATS-loss test and what it
// got back.
type lossCall struct {
	key            string
	body           []byte
	sent, answered time.Time
	status         int
	header         http.Header
	problem        apiProblem
	orderID        string
	err            error
}

// post sends c's request and records the answer in c.
func (c *lossCall) post(client *http.Client, url string) {
	c.sent = time.Now()
	defer func() { c.answered = time.Now() }()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/orders", bytes.NewReader(c.body))
	if err != nil {
		c.err = err
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tokClient)
	req.Header.Set("Idempotency-Key", c.key)
	res, err := client.Do(req)
	if err != nil {
		c.err = err
		return
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.err = err
		return
	}
	c.status, c.header = res.StatusCode, res.Header
	if res.StatusCode >= 300 {
		c.err = json.Unmarshal(b, &c.problem)
		return
	}
	var v struct {
		OrderID string `json:"order_id"`
	}
	c.err = json.Unmarshal(b, &v)
	c.orderID = v.OrderID
}

// TestNATSLossUnderLoadAnswers503AtOnce kills nats-server under ~200
// orders/s. Every request in flight at the kill or arriving after it is
// answered within answerBound of the kill: a 202 whose acknowledgement made
// it, or a 503 with Retry-After. Then the server comes back on the same store and address:
// every 202 is in the store, and retrying each 503 with its key places
// exactly one order per key, whether or not the first attempt was stored.
func TestNATSLossUnderLoadAnswers503AtOnce(t *testing.T) {
	ns, _ := testnats.Start(t)
	dir, addr := ns.JetStreamConfig().StoreDir, ns.Addr().String()
	// The engine's own connection options: reconnect for ever, no buffer.
	nc, _, err := eventstore.Connect(context.Background(), eventstore.ConnectOptions{URL: ns.ClientURL(), Name: "nats-loss"})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	e := startEngineConn(t, ns, nc, limitConfig{})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	t.Cleanup(client.CloseIdleConnections)

	const (
		rate       = 200 // orders/s, open loop
		beforeKill = time.Second
		afterKill  = 1500 * time.Millisecond
	)
	var (
		calls []*lossCall
		wg    sync.WaitGroup
	)
	start := time.Now()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * time.Second / rate)
			if at.Sub(start) > beforeKill+afterKill {
				return
			}
			time.Sleep(time.Until(at))
			o := validOrder()
			o.CustomerID = fmt.Sprintf("loss-%d", i)
			body, _ := json.Marshal(o)
			c := &lossCall{key: fmt.Sprintf("loss-key-%d", i), body: body}
			calls = append(calls, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.post(client, e.srv.URL)
			}()
		}
	}()
	time.Sleep(beforeKill)
	killAt := time.Now()
	ns.Shutdown()
	killed := time.Since(killAt)
	<-loadDone
	wg.Wait()

	var lat, inFlight []time.Duration
	codes := map[string]int{}
	for i, c := range calls {
		if c.err != nil {
			t.Errorf("request %d (status %d): %v", i, c.status, c.err)
			continue
		}
		if c.answered.Before(killAt) {
			if c.status != http.StatusAccepted {
				t.Errorf("request %d before the kill: %d %+v", i, c.status, c.problem)
			}
			continue
		}
		from := killAt
		if c.sent.After(from) {
			from = c.sent
		}
		d := c.answered.Sub(from)
		lat = append(lat, d)
		if c.sent.Before(killAt) {
			inFlight = append(inFlight, d)
		}
		if d > answerBound {
			t.Errorf("request %d answered %v after the kill (or after it was sent, if later), want within %v", i, d, answerBound)
		}
		switch {
		case c.status == http.StatusAccepted && c.sent.Before(killAt):
			codes["202"]++
		case c.status == http.StatusServiceUnavailable:
			codes[c.problem.Code]++
			if c.header.Get("Retry-After") == "" {
				t.Errorf("request %d: 503 without Retry-After", i)
			}
			switch c.problem.Code {
			case "unavailable":
			case "outcome_unknown":
				if !strings.Contains(c.problem.Detail, "same Idempotency-Key is safe") {
					t.Errorf("request %d: outcome_unknown without saying a keyed retry is safe: %q", i, c.problem.Detail)
				}
			default:
				t.Errorf("request %d: 503 with code %q", i, c.problem.Code)
			}
		default:
			t.Errorf("request %d after the kill: %d %+v", i, c.status, c.problem)
		}
	}
	if len(lat) < rate/2 {
		t.Fatalf("only %d requests were in flight at the kill or sent after it; the load did not span the kill", len(lat))
	}
	t.Logf("%d requests, %d answered after the kill (nats-server shutdown took %v): %v; kill to answer %s; of the %d in flight at the kill: %s",
		len(calls), len(lat), killed, codes, spread(lat), len(inFlight), spread(inFlight))

	ns2, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: dir, Listen: addr})
	if err != nil {
		t.Fatalf("restart nats-server: %v", err)
	}
	t.Cleanup(func() {
		nc.Close()
		ns2.Shutdown()
		ns2.WaitForShutdown()
	})
	deadline := time.Now().Add(30 * time.Second)
	for e.store.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("event store not back 30s after nats-server restarted")
		}
		time.Sleep(50 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := map[string]bool{} // orders.<id> of every key, once answered
	replayed := 0
	for i, c := range calls {
		if c.err != nil {
			continue
		}
		if c.status == http.StatusAccepted {
			snap, err := e.app.Orders.Load(ctx, c.orderID)
			if err != nil || snap.Version == 0 {
				t.Errorf("request %d: order %s acknowledged with 202 is not in the store (%v)", i, c.orderID, err)
			}
			want["orders."+c.orderID] = true
			continue
		}
		c.post(client, e.srv.URL)
		if c.err != nil || c.status != http.StatusAccepted {
			t.Errorf("retry of request %d with its key: %d %+v %v", i, c.status, c.problem, c.err)
			continue
		}
		if c.header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
		want["orders."+c.orderID] = true
	}
	info, err := e.js.Stream(ctx, e.store.Stream())
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	si, err := info.Info(ctx, jetstream.WithSubjectFilter("orders.*"))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if len(si.State.Subjects) != len(calls) || len(want) != len(calls) {
		t.Errorf("%d keys, %d distinct orders answered, %d orders in the store: want one order per key",
			len(calls), len(want), len(si.State.Subjects))
	}
	for subj := range si.State.Subjects {
		if !want[subj] {
			t.Errorf("%s is in the store but no answer named it", subj)
		}
	}
	t.Logf("after the restart: %d orders stored for %d keys; %d retries of a 503 found their first attempt stored (Idempotent-Replayed)",
		len(si.State.Subjects), len(calls), replayed)
}

// spread renders the p50, p99 and max of ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	slices.Sort(ds)
	pct := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return fmt.Sprintf("p50 %v p99 %v max %v", pct(0.5), pct(0.99), ds[len(ds)-1])
}
