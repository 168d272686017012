package queries_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderengine/engine/queries"
)

// sseEvent is one dispatched server-sent event.
type sseEvent struct{ id, event, data string }

// sseReader reads a text/event-stream the way a browser does, keeping
// what the tests look at: events, retry: and heartbeat comments.
type sseReader struct {
	r          *bufio.Reader
	retry      string
	heartbeats int
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: bufio.NewReaderSize(r, 1<<20)} }

// next returns the next event, or the read error (io.EOF when the server
// ended the stream).
func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if len(data) > 0 {
				ev.data = strings.Join(data, "\n")
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
			s.heartbeats++
		case strings.HasPrefix(line, "retry: "):
			s.retry = strings.TrimPrefix(line, "retry: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
}

// counterSource is a snapshot source whose value the test sets; with pad,
// every snapshot carries that many bytes more, to fill socket buffers.
type counterSource struct {
	n     atomic.Int64
	calls atomic.Int64
	pad   int
}

func (c *counterSource) source(context.Context) ([]byte, error) {
	c.calls.Add(1)
	return fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, c.n.Load(), strings.Repeat("x", c.pad)), nil
}

// streamServer serves s's stream on a real HTTP server.
func streamServer(t *testing.T, s *queries.Stream) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(queries.HandleStream(s, nil))
	t.Cleanup(srv.Close)
	return srv
}

// openStream connects to the stream with the given headers; the stream
// is closed when the test ends.
func openStream(t *testing.T, url string, header map[string]string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	return res
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline: the tests wait for conditions, they never time anything.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStreamSendsRetryThenTheSnapshotWithAnID(t *testing.T) {
	src := &counterSource{}
	src.n.Store(7)
	s := queries.NewStream(t.Context(), src.source, queries.StreamConfig{Interval: time.Hour, Retry: 2500 * time.Millisecond}, nil)
	res := openStream(t, streamServer(t, s).URL, nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got %d %q, want 200 text/event-stream", res.StatusCode, res.Header.Get("Content-Type"))
	}
	r := newSSEReader(res.Body)
	ev, err := r.next()
	if err != nil {
		t.Fatal(err)
	}
	if r.retry != "2500" {
		t.Errorf("retry %q, want 2500", r.retry)
	}
	if ev.id != "1" || ev.event != "summary" || !strings.HasPrefix(ev.data, `{"n":7,`) {
		t.Errorf("first event %+v, want id 1, summary, n 7", ev)
	}
}

func TestStreamReconnectGetsTheCurrentSnapshotAtOnce(t *testing.T) {
	src := &counterSource{}
	// The producer computes once when the first client comes and then not
	// for an hour: whatever a reconnecting client gets, it gets at once.
	s := queries.NewStream(t.Context(), src.source, queries.StreamConfig{Interval: time.Hour}, nil)
	srv := streamServer(t, s)
	first := openStream(t, srv.URL, nil)
	ev, err := newSSEReader(first.Body).next()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		again := openStream(t, srv.URL, map[string]string{"Last-Event-ID": ev.id})
		got, err := newSSEReader(again.Body).next()
		if err != nil {
			t.Fatalf("reconnect %d: %v", i, err)
		}
		if got != ev {
			t.Errorf("reconnect %d got %+v, want the current %+v", i, got, ev)
		}
		_ = again.Body.Close()
	}
	if n := src.calls.Load(); n != 1 {
		t.Errorf("the source was read %d times for 4 clients, want once", n)
	}
}

func TestStreamDropsAClientThatDoesNotReadWithoutHoldingUpOthers(t *testing.T) {
	// Big, ever-changing snapshots fill the sockets of a client that does
	// not read; its buffer of 4 events then fills and it is dropped.
	src := &counterSource{pad: 64 << 10}
	s := queries.NewStream(t.Context(), func(ctx context.Context) ([]byte, error) {
		src.n.Add(1)
		return src.source(ctx)
	}, queries.StreamConfig{Interval: 2 * time.Millisecond, Buffer: 4, WriteTimeout: 200 * time.Millisecond}, nil)
	srv := streamServer(t, s)
	fast := newSSEReader(openStream(t, srv.URL, nil).Body)
	if _, err := fast.next(); err != nil {
		t.Fatal(err)
	}

	slow, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Close() })
	_ = slow.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := fmt.Fprintf(slow, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}

	events := make(chan sseEvent, 1024)
	go func() {
		defer close(events)
		for {
			ev, err := fast.next()
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	var lastID string
	waitFor(t, "the slow client to be dropped", func() bool {
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("the reading client's stream ended")
				}
				lastID = ev.id
				continue
			default:
			}
			return s.Dropped() == 1
		}
	})
	// The client that reads goes on getting new events after the drop.
	for range 3 {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the reading client's stream ended after the drop")
			}
			lastID = ev.id
		case <-time.After(30 * time.Second):
			t.Fatal("no event for the reading client after the drop")
		}
	}
	if s.Clients() != 1 || s.Dropped() != 1 {
		t.Errorf("%d clients, %d dropped; want 1 and 1 (last event id %s)", s.Clients(), s.Dropped(), lastID)
	}
}

func TestStreamRefusesStreamsOverTheCap(t *testing.T) {
	src := &counterSource{}
	s := queries.NewStream(t.Context(), src.source, queries.StreamConfig{Interval: time.Hour, MaxClients: 1}, nil)
	srv := streamServer(t, s)
	if _, err := newSSEReader(openStream(t, srv.URL, nil).Body).next(); err != nil {
		t.Fatal(err)
	}
	res := openStream(t, srv.URL, nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		res.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), `"code":"too_many_streams"`) {
		t.Errorf("over the cap: %d %v %s, want a 503 too_many_streams problem with Retry-After", res.StatusCode, res.Header, body)
	}
}

func TestStreamEndsWhenItsContextEnds(t *testing.T) {
	src := &counterSource{}
	ctx, shutdown := context.WithCancel(t.Context())
	s := queries.NewStream(ctx, src.source, queries.StreamConfig{Interval: time.Hour}, nil)
	srv := streamServer(t, s)
	r := newSSEReader(openStream(t, srv.URL, nil).Body)
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	shutdown()
	if _, err := r.next(); err != io.EOF {
		t.Errorf("after shutdown: %v, want the stream to end (EOF)", err)
	}
	res := openStream(t, srv.URL, nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"code":"shutting_down"`) {
		t.Errorf("after shutdown: %d %s, want 503 shutting_down", res.StatusCode, body)
	}
	waitFor(t, "no client left", func() bool { return s.Clients() == 0 })
}

func TestStreamOutlivesTheServersTimeouts(t *testing.T) {
	src := &counterSource{}
	s := queries.NewStream(t.Context(), src.source, queries.StreamConfig{Interval: time.Hour, Heartbeat: 20 * time.Millisecond}, nil)
	srv := httptest.NewUnstartedServer(queries.HandleStream(s, nil))
	srv.Config.ReadTimeout = 100 * time.Millisecond
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	r := newSSEReader(openStream(t, srv.URL, nil).Body)
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	// 50 heartbeats take ten times the server's timeouts.
	deadline := time.Now().Add(30 * time.Second)
	for r.heartbeats < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d heartbeats", r.heartbeats)
		}
		line, err := r.r.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended after %d heartbeats: %v", r.heartbeats, err)
		}
		if strings.HasPrefix(line, ":") {
			r.heartbeats++
		}
	}
}

func TestStreamSaysWhenTheSnapshotCannotBeReadAndWhenItCanAgain(t *testing.T) {
	src := &counterSource{}
	var failing atomic.Bool
	s := queries.NewStream(t.Context(), func(ctx context.Context) ([]byte, error) {
		if failing.Load() {
			return nil, fmt.Errorf("database down")
		}
		return src.source(ctx)
	}, queries.StreamConfig{Interval: time.Millisecond}, nil)
	r := newSSEReader(openStream(t, streamServer(t, s).URL, nil).Body)
	first, err := r.next()
	if err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	ev, err := r.next()
	if err != nil || ev.event != "problem" || ev.id != "" || !strings.Contains(ev.data, `"code":"unavailable"`) {
		t.Fatalf("while the source fails: %+v %v, want one problem event without an id", ev, err)
	}
	failing.Store(false)
	ev, err = r.next()
	if err != nil || ev.event != "summary" || ev.data != first.data || ev.id == first.id {
		t.Errorf("once the source is back: %+v %v, want the unchanged summary again under a new id", ev, err)
	}
}
