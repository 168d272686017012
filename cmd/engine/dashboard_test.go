package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/engine/internal/pglocal"
	"github.com/orderengine/engine/queries"
)

// dashboardEnv is the environment of a real engine with a token per role.
func dashboardEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"ENGINE_HTTP_ADDR":  "127.0.0.1:0",
		"ENGINE_DATA_DIR":   t.TempDir(),
		"DATABASE_URL":      pglocal.ForTest(t),
		"ENGINE_API_TOKENS": tokClient + ":client," + tokViewer + ":viewer," + tokAuditor + ":auditor," + tokAdmin + ":admin",
	}
}

// liveStream is an open GET /v1/dashboard/stream.
type liveStream struct {
	res *http.Response
	r   *bufio.Reader
}

// openLive opens the stream with token; it is closed when the test ends.
func openLive(t *testing.T, base, token string) *liveStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+streamPath, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	return &liveStream{res: res, r: bufio.NewReaderSize(res.Body, 1<<20)}
}

// next returns the id and view of the next summary event, or the error
// that ended the stream (io.EOF when the server ended it).
func (s *liveStream) next() (uint64, queries.LiveView, error) {
	var id uint64
	var data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return 0, queries.LiveView{}, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			id, _ = strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && data != "":
			var v queries.LiveView
			err := json.Unmarshal([]byte(data), &v)
			return id, v, err
		}
	}
}

func TestDashboardStream(t *testing.T) {
	base, _, _ := startEngine(t, dashboardEnv(t))

	t.Run("refuses a missing token with 401 and a client token with 403", func(t *testing.T) {
		for _, c := range []struct {
			token, code string
			status      int
		}{{"", "unauthorized", http.StatusUnauthorized}, {tokClient, "forbidden", http.StatusForbidden}} {
			s := openLive(t, base, c.token)
			body, _ := io.ReadAll(s.res.Body)
			wantProblem(t, apiResponse{status: s.res.StatusCode, header: s.res.Header, body: body}, c.status, c.code)
		}
	})

	t.Run("follows the orders placed through the API", func(t *testing.T) {
		s := openLive(t, base, tokViewer)
		if s.res.StatusCode != http.StatusOK || s.res.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("viewer: %d %q, want 200 text/event-stream", s.res.StatusCode, s.res.Header.Get("Content-Type"))
		}
		id, v, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		if len(v.OrdersByStatus) != 8 || len(v.PerMinute[queries.MetricOrdersPlaced]) != queries.LiveMinutes {
			t.Fatalf("first view %+v: want every status and %d minutes", v, queries.LiveMinutes)
		}
		if code, body := call(t, "PUT", base+"/v1/inventory/WIDGET", tokAdmin, `{"on_hand": 100}`); code != http.StatusOK {
			t.Fatalf("set on hand: %d %v", code, body)
		}
		for range 2 {
			placeConfirmed(t, base, `{"customer_id":"c1","currency":"EUR","lines":[{"sku":"WIDGET","qty":1,"unit_price_cents":250}]}`)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		context.AfterFunc(ctx, func() { _ = s.res.Body.Close() })
		for v.OrdersByStatus["confirmed"] != 2 || sum(v.PerMinute[queries.MetricOrdersConfirmed]) != 2 {
			prev := id
			if id, v, err = s.next(); err != nil {
				t.Fatalf("stream ended before it showed 2 confirmed orders: %v (last %+v)", err, v)
			}
			if id <= prev {
				t.Errorf("event id %d after %d: ids must increase", id, prev)
			}
		}
	})
}

func sum(points []queries.Point) (n int64) {
	for _, p := range points {
		n += p.V
	}
	return n
}

// placeConfirmed places an order as the client and waits for it to be
// confirmed; it returns the order id.
func placeConfirmed(t *testing.T, base, body string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/orders", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tokClient)
	req.Header.Set("Prefer", "wait=10")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	var o struct {
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
	}
	if err := json.NewDecoder(res.Body).Decode(&o); err != nil || res.StatusCode != http.StatusCreated || o.Status != "confirmed" {
		t.Fatalf("place order: %d %+v %v, want 201 confirmed", res.StatusCode, o, err)
	}
	return o.OrderID
}

func TestServeEndsDashboardStreamsOnShutdown(t *testing.T) {
	base, _, stop := startEngine(t, dashboardEnv(t))
	s := openLive(t, base, tokViewer)
	if _, _, err := s.next(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Were the stream left open, Shutdown would wait for it until its own
	// deadline and serve would return that error.
	if _, _, err := s.next(); err != io.EOF {
		t.Errorf("stream after shutdown began: %v, want it ended (EOF)", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("serve returned %v, want a clean shutdown", err)
	}
}
