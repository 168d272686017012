package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/orderengine/engine/internal/pglocal"
)

// startSecuredNATS runs a JetStream server on loopback configured by
// secure (authentication, TLS), stopped at the end of the test.
func startSecuredNATS(t *testing.T, secure func(*server.Options)) *server.Server {
	t.Helper()
	o := &server.Options{ServerName: "secured", JetStream: true, StoreDir: t.TempDir(), SyncAlways: true,
		NoSigs: true, NoLog: true, Host: "127.0.0.1", Port: -1}
	secure(o)
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// openWith opens the event store with the configuration env gives.
func openWith(t *testing.T, env map[string]string) error {
	t.Helper()
	env["ENGINE_DATA_DIR"] = t.TempDir()
	cfg, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, closeStore, err := openStore(ctx, cfg, "test")
	if err != nil {
		return err
	}
	defer closeStore()
	return store.Ping(ctx)
}

func TestExternalNATSWithUserAndPasswordOrToken(t *testing.T) {
	withUser := startSecuredNATS(t, func(o *server.Options) { o.Username, o.Password = "engine", "s3cret-pw" })
	withToken := startSecuredNATS(t, func(o *server.Options) { o.Authorization = "s3cret-token" })
	hostPort := strings.TrimPrefix(withUser.ClientURL(), "nats://")
	for name, tc := range map[string]struct {
		env    map[string]string
		ok     bool
		secret string
	}{
		"user and password":          {env: map[string]string{"NATS_URL": withUser.ClientURL(), "NATS_USER": "engine", "NATS_PASSWORD": "s3cret-pw"}, ok: true},
		"credentials in the URL":     {env: map[string]string{"NATS_URL": "nats://engine:s3cret-pw@" + hostPort}, ok: true},
		"token":                      {env: map[string]string{"NATS_URL": withToken.ClientURL(), "NATS_TOKEN": "s3cret-token"}, ok: true},
		"wrong password":             {env: map[string]string{"NATS_URL": withUser.ClientURL(), "NATS_USER": "engine", "NATS_PASSWORD": "wr0ng-pw"}, secret: "wr0ng-pw"},
		"wrong password in the URL":  {env: map[string]string{"NATS_URL": "nats://engine:wr0ng-pw@" + hostPort}, secret: "wr0ng-pw"},
		"no credentials":             {env: map[string]string{"NATS_URL": withToken.ClientURL()}},
		"two methods":                {env: map[string]string{"NATS_URL": withToken.ClientURL(), "NATS_TOKEN": "t", "NATS_USER": "u"}},
		"creds file that is missing": {env: map[string]string{"NATS_URL": withToken.ClientURL(), "NATS_CREDS": "/nonexistent/engine.creds"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := openWith(t, tc.env)
			if (err == nil) != tc.ok {
				t.Fatalf("open: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && tc.secret != "" && strings.Contains(err.Error()+" "+strings.Join(errDetails(err), " "), tc.secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestExternalNATSOverTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestPKI(t, dir)
	ns := startSecuredNATS(t, func(o *server.Options) {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		o.TLS = true
	})
	url := ns.ClientURL()
	if err := openWith(t, map[string]string{"NATS_URL": url, "NATS_TLS_CA": caFile}); err != nil {
		t.Fatalf("TLS with the right CA: %v", err)
	}
	if err := openWith(t, map[string]string{"NATS_URL": url}); err == nil {
		t.Fatal("TLS without the CA that signed the server's certificate was accepted")
	}
}

func TestPprofIsOnItsOwnListenerOnlyWhenAsked(t *testing.T) {
	base, stdout, _ := startEngine(t, map[string]string{
		"ENGINE_HTTP_ADDR":  "127.0.0.1:0",
		"ENGINE_DATA_DIR":   t.TempDir(),
		"DATABASE_URL":      pglocal.ForTest(t),
		"ENGINE_API_TOKENS": "a:admin",
		"ENGINE_PPROF_ADDR": "127.0.0.1:0",
	})
	m := regexp.MustCompile(`pprof at (http://\S+)`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no pprof address in %q", stdout.String())
	}
	resp, err := http.Get(m[1] + "cmdline")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("pprof cmdline: %d", resp.StatusCode)
	}
	if status, _ := call(t, http.MethodGet, base+"/debug/pprof/cmdline", "a", ""); status != http.StatusNotFound {
		t.Errorf("pprof on the API listener: %d, want 404", status)
	}
}

// errDetails is what an operator would see of err beyond its message.
func errDetails(err error) []string {
	var out []string
	for e := err; e != nil; {
		out = append(out, e.Error())
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return out
}

// writeTestPKI writes a CA and a server certificate for 127.0.0.1 signed by
// it, as PEM files in dir.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", der), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}
