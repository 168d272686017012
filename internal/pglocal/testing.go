package pglocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
)

// testDirPrefix names the temporary directories of test instances, so that
// a later test binary can find the ones whose owner died.
const testDirPrefix = "pglocal-test-"

// testSettings make the test instance fit benchmarks with 64+ connections.
// fsync stays on: benchmarks compare durable systems against it.
var testSettings = []setting{
	{"shared_buffers", "128MB"},
	{"max_connections", "200"},
}

// shared is the test binary's one private instance.
var shared struct {
	mu   sync.Mutex
	inst *Instance
	dir  string
	err  error
	// started is set once a start was attempted, so that a failure is
	// reported to every test rather than retried by each.
	started bool
}

var (
	mainRunning atomic.Bool
	dbSeq       atomic.Int64
	// runID keeps database names of concurrent test binaries apart on a
	// shared TEST_DATABASE_URL server: go test ./... runs packages in
	// parallel, and they may have tests of the same name.
	runID = newRunID()
)

func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ForTest returns a connection string to a fresh, empty database for the
// calling test, dropped (WITH (FORCE), so PostgreSQL 13 or later) when the
// test ends.
//
// With TEST_DATABASE_URL set, the database is created on that server (a
// keyword/value or postgres:// URL whose user may create databases) and the
// returned string is that URL with its database replaced. Otherwise the
// test binary starts one private instance on first use, under
// os.TempDir(), which Main stops and removes after the tests; ForTest fails
// the test when TestMain does not call Main, as the server would outlive the
// test binary.
func ForTest(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	adminURL := os.Getenv("TEST_DATABASE_URL")
	if adminURL == "" {
		if !mainRunning.Load() {
			tb.Fatal("pglocal.ForTest needs TestMain to call pglocal.Main, which stops the private PostgreSQL after the tests: " +
				"func TestMain(m *testing.M) { os.Exit(pglocal.Main(m)) }")
		}
		inst, err := sharedInstance(ctx)
		if err != nil {
			tb.Fatalf("pglocal: %v\nhint: %s", err, errors.FlattenHints(err))
		}
		adminURL = inst.URL("postgres")
	}

	name := testDatabaseName(tb.Name())
	dbURL, err := withDatabase(adminURL, name)
	if err != nil {
		tb.Fatalf("pglocal: %v\nhint: %s", err, errors.FlattenHints(err))
	}
	if err := createDatabase(ctx, adminURL, name); err != nil {
		tb.Fatalf("pglocal: %v", err)
	}
	tb.Cleanup(func() {
		// The test's context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dropDatabase(ctx, adminURL, name); err != nil {
			tb.Errorf("pglocal: %v", err)
		}
	})
	return dbURL
}

// Main runs the tests and then stops the private instance ForTest may have
// started and removes its files. Test packages that use ForTest call it from
// TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pglocal.Main(m)) }
//
// A failure to stop turns a passing run into a failing one.
func Main(m *testing.M) int {
	mainRunning.Store(true)
	code := m.Run()
	mainRunning.Store(false)

	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.inst != nil {
		if err := shared.inst.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pglocal: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.inst = nil
	}
	if shared.dir != "" {
		if err := os.RemoveAll(shared.dir); err != nil {
			fmt.Fprintf(os.Stderr, "pglocal: remove the test instance: %v\n", err)
		}
		shared.dir = ""
	}
	return code
}

// sharedInstance starts the test binary's private instance on first use.
func sharedInstance(ctx context.Context) (*Instance, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.started {
		return shared.inst, shared.err
	}
	shared.started = true
	reapStale()
	shared.inst, shared.dir, shared.err = startTestInstance(ctx)
	return shared.inst, shared.err
}

// startTestInstance starts an instance in a new temporary directory holding
// owner.pid (our pid, for reapStale), the data directory and the socket
// directory.
func startTestInstance(ctx context.Context) (*Instance, string, error) {
	dir, err := os.MkdirTemp("", testDirPrefix)
	if err != nil {
		return nil, "", errors.Wrap(err, "create the test instance directory")
	}
	// MkdirTemp makes it 0700; as root, the postgres user must get through.
	err = os.Chmod(dir, 0o711)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", errors.Wrap(err, "prepare the test instance directory")
	}
	// The socket directory goes in dir too, so that reapStale removes it.
	inst, err := start(ctx, filepath.Join(dir, "data"), options{settings: testSettings, sockBase: dir})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", errors.WithHint(err, "tests can use a running server instead: set TEST_DATABASE_URL to one they may create databases on")
	}
	return inst, dir, nil
}

// reapStale stops and removes the test instances of test binaries that died
// before Main could (a panic, or go test's -timeout), which would otherwise
// keep running forever. The data is disposable, hence SIGQUIT: PostgreSQL's
// immediate shutdown.
func reapStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), testDirPrefix+"*"))
	for _, dir := range dirs {
		owner, err := readPID(filepath.Join(dir, "owner.pid"))
		if err != nil || processAlive(owner) {
			continue
		}
		if pid, running := postmasterPID(filepath.Join(dir, "data")); running && isPostgres(pid) {
			_ = syscall.Kill(pid, syscall.SIGQUIT)
		}
		_ = os.RemoveAll(dir)
	}
}

// isPostgres guards reapStale against a postmaster pid since reused by an
// unrelated process. Without /proc it answers false and leaves the server.
func isPostgres(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && filepath.Base(exe) == "postgres"
}

// testDatabaseName is "t_<test name>_<run>_<n>", lower case and within
// PostgreSQL's 63 bytes.
func testDatabaseName(testName string) string {
	suffix := fmt.Sprintf("_%s_%d", runID, dbSeq.Add(1))
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if s := b.String(); s != "" && !strings.HasSuffix(s, "_") {
			b.WriteByte('_')
		}
	}
	base := strings.TrimSuffix(b.String(), "_")
	if room := 63 - len("t_") - len(suffix); len(base) > room {
		base = strings.TrimSuffix(base[:room], "_")
	}
	return "t_" + base + suffix
}

// withDatabase returns connString with its database replaced by name.
func withDatabase(connString, name string) (string, error) {
	if !strings.HasPrefix(connString, "postgres://") && !strings.HasPrefix(connString, "postgresql://") {
		// In keyword/value strings the last occurrence of a keyword wins.
		return connString + " dbname=" + quoteConnValue(name), nil
	}
	u, err := url.Parse(connString)
	if err != nil {
		return "", errors.WithHint(errors.Wrap(err, "parse the database URL"),
			"for a unix socket use host=/dir in the query string or the keyword/value form")
	}
	u.Path, u.RawPath = "/"+name, ""
	if q := u.Query(); q.Has("dbname") {
		q.Del("dbname")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// dropDatabase drops name, ending the sessions a test left open.
func dropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return errors.Wrap(err, "connect to drop a test database")
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return errors.Wrapf(err, "drop test database %s", name)
}

// StartDetached is for tests of what an owner that died leaves behind when
// the parent-death signal did not reach its server (an owner of an older
// version, or a server slow to shut down): it starts a server on dataDir
// (initialising it first) with pg_ctl, as a daemon that is not our child
// and outlives us, and returns its pid. StopOrphan stops it.
func StartDetached(ctx context.Context, dataDir string) (int, error) {
	inst, err := Start(ctx, dataDir)
	if err != nil {
		return 0, err
	}
	if err := inst.Stop(); err != nil {
		return 0, err
	}
	sockDir, err := inst.acct.socketDir()
	if err != nil {
		return 0, err
	}
	inst.sockDir = sockDir
	if err := inst.writeSettings(nil); err != nil {
		return 0, err
	}
	if _, err := inst.acct.run(ctx, inst.bin.path("pg_ctl"), "start", "-D", inst.dataDir, "-l", filepath.Join(inst.dataDir, logFile), "-w", "-s"); err != nil {
		return 0, err
	}
	pid, running := postmasterPID(inst.dataDir)
	if !running {
		return 0, errors.Newf("pg_ctl started no server on %s", inst.dataDir)
	}
	return pid, nil
}
