// Package testnats starts a real embedded nats-server for tests, configured
// like the engine's own (JetStream on disk, sync_interval: always).
package testnats

import (
	"os"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/orderengine/engine/eventstore"
)

// Start runs an embedded JetStream server listening on a random loopback
// port, stores its files under tb.TempDir() and stops it at the end of the
// test. It returns the server and a connection to it.
func Start(tb testing.TB) (*server.Server, *nats.Conn) {
	tb.Helper()
	ns, err := eventstore.StartEmbedded(eventstore.EmbeddedOptions{Dir: tb.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		tb.Fatalf("start nats-server: %v", err)
	}
	tb.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns, Connect(tb, ns)
}

// Connect opens another connection to ns, closed at the end of the test.
func Connect(tb testing.TB, ns *server.Server) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		tb.Fatalf("connect to nats-server: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// ConnectInProcess connects to ns without a socket (for a server started
// without a listener), closed at the end of the test.
func ConnectInProcess(tb testing.TB, ns *server.Server) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		tb.Fatalf("connect to nats-server in process: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Shards is the shard count test fixtures open their event stores with:
// ENGINE_TEST_SHARDS when set (run the suites with 1 to test one-shard
// mode), otherwise 4. The engine's own default is one shard (measured:
// eventstore.DefaultShards), which the tests of whole engine processes
// (crash loop, NATS loss) run; the package suites run the sharded paths,
// which only they reach.
func Shards() int {
	n, err := strconv.Atoi(os.Getenv("ENGINE_TEST_SHARDS"))
	if err != nil || n < 1 {
		return 4
	}
	return n
}
