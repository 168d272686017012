package testnats

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartCluster runs n real nats-servers in this process, clustered over
// loopback routes with JetStream on disk (sync_interval: always), and
// returns their client URLs joined by commas, as NATS_URL takes them. The
// servers stop at the end of the test.
func StartCluster(tb testing.TB, n int) string {
	tb.Helper()
	routePorts := make([]int, n)
	var routes []*url.URL
	for i := range n {
		routePorts[i] = freePort(tb)
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", routePorts[i])})
	}
	var urls []string
	var servers []*server.Server
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			SyncAlways: true,
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "engine-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     routes,
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			tb.Fatalf("configure cluster node %d: %v", i+1, err)
		}
		ns.Start()
		tb.Cleanup(func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		})
		servers = append(servers, ns)
	}
	for _, ns := range servers {
		if !ns.ReadyForConnections(30 * time.Second) {
			tb.Fatal("cluster node not ready")
		}
		urls = append(urls, ns.ClientURL())
	}
	deadline := time.Now().Add(30 * time.Second)
	// A leader alone is not enough: placing an R3 stream needs the leader
	// to see every peer online with JetStream (and their stats) first.
	for !clusterFormed(servers) {
		if time.Now().After(deadline) {
			tb.Fatal("JetStream cluster did not form (a meta leader seeing every peer) within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return strings.Join(urls, ",")
}

func clusterFormed(servers []*server.Server) bool {
	for _, ns := range servers {
		if ns.JetStreamIsLeader() {
			return len(ns.JetStreamClusterPeers()) == len(servers)
		}
	}
	return false
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
