package testnats

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Link is a loopback TCP proxy between NATS clients and a server, for tests
// of a lost server or network. Muted, it swallows what the server sends, so
// that a publish the server has taken never gets its acknowledgement: what a
// client sees when the server dies between storing a message and answering.
// Clients reconnect through it to whatever listens on the target address.
type Link struct {
	ln     net.Listener
	target string
	mute   atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// NewLink listens on a random loopback port and forwards every connection
// to target (host:port). It stops at the end of the test.
func NewLink(tb testing.TB, target string) *Link {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen for the NATS link: %v", err)
	}
	l := &Link{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go l.serve()
	tb.Cleanup(l.close)
	return l
}

// URL is the address clients connect to instead of the server's.
func (l *Link) URL() string { return "nats://" + l.ln.Addr().String() }

// Mute makes the link drop (on) or pass (off) what the server sends.
func (l *Link) Mute(on bool) { l.mute.Store(on) }

// Cut closes every connection through the link; clients may reconnect.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		_ = c.Close()
	}
}

func (l *Link) close() {
	_ = l.ln.Close()
	l.Cut()
}

func (l *Link) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.pipe(c)
	}
}

// pipe joins client c to a new connection to the target; when either side
// ends, both are closed.
func (l *Link) pipe(c net.Conn) {
	s, err := net.DialTimeout("tcp", l.target, time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	l.mu.Lock()
	l.conns[c], l.conns[s] = struct{}{}, struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.conns, c)
		delete(l.conns, s)
		l.mu.Unlock()
		_ = c.Close()
		_ = s.Close()
	}()
	go func() {
		_, _ = io.Copy(s, c)
		_ = s.Close()
		_ = c.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 && !l.mute.Load() {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
