package eventstore

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configures the in-process JetStream server.
type EmbeddedOptions struct {
	// Dir is where JetStream keeps its files (ENGINE_DATA_DIR/nats).
	Dir string
	// Listen is a loopback host:port for other processes to connect to;
	// empty means in-process connections only.
	Listen string
	// Feed, when set, turns on authentication: the engine connects as
	// EngineUser with EnginePassword, and Feed's user may read the feed
	// and nothing else (see FeedAccess). Nil: no users (tests, and an
	// in-process-only server).
	Feed           *FeedAccess
	EnginePassword string
}

// StartEmbedded starts a nats-server in this process with JetStream storing
// under opts.Dir and every write fsynced before it is acknowledged
// (sync_interval: always). It returns an error when the server cannot start.
func StartEmbedded(opts EmbeddedOptions) (*server.Server, error) {
	so := &server.Options{
		ServerName: "engine-embedded",
		JetStream:  true,
		StoreDir:   filepath.Join(opts.Dir),
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
		DontListen: opts.Listen == "",
		Host:       "127.0.0.1",
		Port:       -1,
	}
	if opts.Listen != "" {
		host, port, err := splitHostPort(opts.Listen)
		if err != nil {
			return nil, err
		}
		so.Host, so.Port = host, port
	}
	if opts.Feed != nil {
		if err := opts.Feed.Valid(); err != nil {
			return nil, err
		}
		embeddedAuth(so, opts.EnginePassword, *opts.Feed)
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, errors.Wrap(err, "configure embedded nats-server")
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats-server did not become ready within 30s")
	}
	if opts.Feed != nil {
		if err := wireFeedAccess(ns, *opts.Feed); err != nil {
			ns.Shutdown()
			return nil, err
		}
	}
	return ns, nil
}

// ConnectOptions says where the event store lives.
type ConnectOptions struct {
	// URL lists external servers, comma separated; empty starts an embedded one.
	URL string
	// DataDir is ENGINE_DATA_DIR; the embedded server keeps JetStream under DataDir/nats.
	DataDir string
	// Name identifies this connection in the server's monitoring.
	Name string
	// Extra connection options (credentials, TLS) for an external server.
	Extra []nats.Option
	// Listen makes the embedded server accept connections on this
	// host:port (ENGINE_NATS_LISTEN), for Feed's reader only; empty: in
	// process only. Ignored with URL.
	Listen string
	Feed   *FeedAccess
}

// Connect returns a connection to the event store's NATS, starting an embedded
// server when no URL is given. close drains the connection and then stops the
// embedded server, so every acknowledged write is on disk before it returns.
func Connect(ctx context.Context, o ConnectOptions) (nc *nats.Conn, closeFn func(), err error) {
	base := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		// No reconnect buffer: a publish while disconnected fails at once
		// instead of being sent after reconnecting, possibly long after the
		// caller was told 503.
		nats.ReconnectBufSize(-1),
	}
	if o.URL != "" {
		nc, err = nats.Connect(o.URL, append(base, o.Extra...)...)
		if err != nil {
			return nil, nil, errors.Wrapf(err, "connect to NATS at %s", RedactURLs(o.URL))
		}
		return nc, func() { drain(nc) }, nil
	}
	eo := EmbeddedOptions{Dir: filepath.Join(o.DataDir, "nats"), Listen: o.Listen, Feed: o.Feed}
	if o.Listen != "" && o.Feed == nil {
		return nil, nil, errors.AssertionFailedf("a listening embedded server needs its feed reader's credentials")
	}
	if eo.Feed != nil {
		eo.EnginePassword = randomPassword()
		base = append(base, nats.UserInfo(EngineUser, eo.EnginePassword))
	}
	ns, err := StartEmbedded(eo)
	if err != nil {
		return nil, nil, err
	}
	nc, err = nats.Connect(ns.ClientURL(), append(base, nats.InProcessServer(ns))...)
	if err != nil {
		ns.Shutdown()
		return nil, nil, errors.Wrap(err, "connect to embedded nats-server")
	}
	return nc, func() {
		drain(nc)
		ns.Shutdown()
		ns.WaitForShutdown()
	}, nil
}

// RedactURLs returns a comma-separated list of server URLs without their
// user info, which may hold a user and password or a token: fit for logs
// and error messages.
func RedactURLs(list string) string {
	urls := strings.Split(list, ",")
	for i, raw := range urls {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Host == "":
			// Not a URL we can take apart: keep only what follows an '@'.
			if at := strings.LastIndex(raw, "@"); at >= 0 {
				raw = "redacted@" + raw[at+1:]
			}
			urls[i] = raw
		default:
			if u.User != nil {
				u.User = url.User("redacted")
			}
			urls[i] = u.String()
		}
	}
	return strings.Join(urls, ",")
}

// drain flushes what the connection still holds and waits for it to close.
func drain(nc *nats.Conn) {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		nc.Close()
	}
}
