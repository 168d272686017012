package queries

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/errors"

	enginemetrics "github.com/orderengine/engine/internal/metrics"
)

// StreamConfig bounds a Stream. Zero fields take the defaults of
// DefaultStreamConfig.
type StreamConfig struct {
	// Interval is the shortest time between two computations of the
	// snapshot, whatever the number of clients.
	Interval time.Duration
	// Heartbeat is how often an idle stream sends a comment, so proxies
	// and the client can tell a quiet stream from a dead one.
	Heartbeat time.Duration
	// Retry is the reconnection delay the stream asks clients to use.
	Retry time.Duration
	// MaxClients caps the streams open at once; more are refused with 503.
	MaxClients int
	// Buffer is how many events may wait for one client; a client that
	// falls further behind is dropped rather than slowing anyone down.
	Buffer int
	// WriteTimeout is how long one write to a client may take before the
	// client is dropped.
	WriteTimeout time.Duration
}

// DefaultStreamConfig is what a zero StreamConfig means.
var DefaultStreamConfig = StreamConfig{
	Interval: time.Second, Heartbeat: 15 * time.Second, Retry: 3 * time.Second,
	MaxClients: 64, Buffer: 8, WriteTimeout: 10 * time.Second,
}

// ErrTooManyStreams is returned by Stream.subscribe when MaxClients
// streams are open; ErrStreamClosed once the Stream is closed.
var (
	ErrTooManyStreams = errors.New("too many streams")
	ErrStreamClosed   = errors.New("stream closed")
)

// Stream computes one snapshot (at most once per Interval, and only while
// a client listens) and fans it out to every client as server-sent events.
// One producer for all clients keeps the database load independent of how
// many dashboards are open.
type Stream struct {
	cfg    StreamConfig
	source func(context.Context) ([]byte, error)
	log    *slog.Logger
	ctx    context.Context // ends every stream and the producer

	mu        sync.Mutex
	clients   map[*streamClient]struct{}
	producing bool
	seq       uint64
	data      []byte // the last snapshot published, to skip unchanged ones
	last      []byte // its whole frame, for clients that join
	dropped   uint64
	failing   bool // a problem event went out since the last snapshot
}

// streamClient is one open stream: frames wait in ch; gone is closed when
// the producer drops the client for falling behind.
type streamClient struct {
	ch   chan []byte
	gone chan struct{}
}

// NewStream returns a Stream of what source computes (one JSON document,
// without newlines). Every stream ends when ctx does, which is how the
// server's shutdown reaches long-lived requests it does not end itself.
func NewStream(ctx context.Context, source func(context.Context) ([]byte, error), cfg StreamConfig, log *slog.Logger) *Stream {
	d := DefaultStreamConfig
	for _, f := range []struct{ dst, def *time.Duration }{
		{&cfg.Interval, &d.Interval}, {&cfg.Heartbeat, &d.Heartbeat}, {&cfg.Retry, &d.Retry}, {&cfg.WriteTimeout, &d.WriteTimeout},
	} {
		if *f.dst <= 0 {
			*f.dst = *f.def
		}
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = d.MaxClients
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = d.Buffer
	}
	return &Stream{cfg: cfg, source: source, log: orDiscard(log), ctx: ctx, clients: map[*streamClient]struct{}{}}
}

// Clients returns how many streams are open.
func (s *Stream) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// Dropped returns how many clients were dropped for falling behind.
func (s *Stream) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// subscribe opens a stream; its buffer already holds the last snapshot
// when there is one, so a reconnecting client is current at once. It fails
// with ErrTooManyStreams or ErrStreamClosed.
func (s *Stream) subscribe() (*streamClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil, ErrStreamClosed
	}
	if len(s.clients) >= s.cfg.MaxClients {
		return nil, ErrTooManyStreams
	}
	c := &streamClient{ch: make(chan []byte, s.cfg.Buffer), gone: make(chan struct{})}
	if s.last != nil {
		c.ch <- s.last
	}
	s.clients[c] = struct{}{}
	enginemetrics.DashboardStreams.Inc()
	if !s.producing {
		s.producing = true
		go s.produce()
	}
	return c, nil
}

// unsubscribe forgets c; the producer stops with the last client.
func (s *Stream) unsubscribe(c *streamClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c]; ok {
		delete(s.clients, c)
		enginemetrics.DashboardStreams.Dec()
	}
}

// produce computes a snapshot at once, then every Interval, until no
// client is left or the Stream's context ends.
func (s *Stream) produce() {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			s.stopProducing()
			return
		case <-timer.C:
		}
		s.mu.Lock()
		if len(s.clients) == 0 {
			// A snapshot kept while nobody listens would be stale for the
			// next client: it gets a fresh one instead.
			s.producing, s.data, s.last = false, nil, nil
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(s.ctx, max(5*s.cfg.Interval, 5*time.Second))
		data, err := s.source(ctx)
		cancel()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("dashboard stream: snapshot failed", "err", err)
				s.publishProblem()
			}
		} else {
			s.publish(data)
		}
		timer.Reset(s.cfg.Interval)
	}
}

func (s *Stream) stopProducing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.producing = false
}

// publish sends data as the next summary event unless it is the same as
// the last one.
func (s *Stream) publish(data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bytes.Equal(data, s.data) {
		return
	}
	s.failing = false
	s.seq++
	frame := make([]byte, 0, len(data)+48)
	frame = append(frame, "id: "...)
	frame = strconv.AppendUint(frame, s.seq, 10)
	frame = append(frame, "\nevent: summary\ndata: "...)
	frame = append(frame, data...)
	frame = append(frame, "\n\n"...)
	s.data, s.last = data, frame
	s.send(frame)
}

// problemFrame tells clients that the view they hold is getting stale.
var problemFrame = []byte(`event: problem
data: {"code":"unavailable","detail":"the dashboard cannot be read right now; the figures shown are the last ones read"}

`)

// publishProblem sends problemFrame once per run of failures. It is not
// kept for clients that join (they get the last summary, then the next
// one), and the next snapshot goes out even if it equals the last, so
// that clients learn the figures are current again.
func (s *Stream) publishProblem() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return
	}
	s.failing, s.data = true, nil
	s.send(problemFrame)
}

// send hands frame to every client without ever waiting for one: a client
// whose buffer is full is dropped (its handler then ends the response)
// and the others go on. s.mu must be held.
func (s *Stream) send(frame []byte) {
	for c := range s.clients {
		select {
		case c.ch <- frame:
		default:
			delete(s.clients, c)
			close(c.gone)
			s.dropped++
			enginemetrics.DashboardStreams.Dec()
			enginemetrics.DashboardStreamDrops.Inc()
			s.log.Warn("dashboard stream: dropped a client that fell behind", "buffer", s.cfg.Buffer)
		}
	}
}
