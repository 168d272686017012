package pglocal_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"

	"github.com/orderengine/engine/internal/pglocal"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(ownerEnv); dir != "" {
		runOwner(dir)
	}
	os.Exit(pglocal.Main(m))
}

// dataDir returns a data directory path the postgres user can reach when
// the tests run as root, which t.TempDir() (under a 0700 directory) is not.
func dataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pglocal-start-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "data")
}

// connect opens a connection closed at the end of the test.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %q: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func start(t *testing.T, dir string) *pglocal.Instance {
	t.Helper()
	inst, err := pglocal.Start(t.Context(), dir)
	if err != nil {
		t.Fatalf("Start: %+v", err)
	}
	t.Cleanup(func() {
		if err := inst.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return inst
}

func TestStartInitialisesThenReusesCluster(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := dataDir(t)
	inst := start(t, dir)

	t.Run("serves queries on the unix socket only, durably", func(t *testing.T) {
		conn := connect(t, inst.URL("postgres"))
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1 = %d, %v", one, err)
		}
		for setting, want := range map[string]string{"listen_addresses": "", "fsync": "on", "server_encoding": "UTF8"} {
			var got string
			if err := conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil || got != want {
				t.Errorf("%s = %q, %v; want %q", setting, got, err, want)
			}
		}
	})

	t.Run("a second Start on the running cluster fails", func(t *testing.T) {
		again, err := pglocal.Start(ctx, dir)
		if err == nil {
			_ = again.Stop()
			t.Fatal("Start succeeded on a data directory whose server is running")
		}
		if !strings.Contains(err.Error(), "already running") {
			t.Errorf("error = %v; want it to say the server is already running", err)
		}
		t.Logf("error: %v; hint: %s", err, errors.FlattenHints(err))
	})

	t.Run("CreateDatabase creates once and then is a no-op", func(t *testing.T) {
		for range 2 {
			if err := inst.CreateDatabase(ctx, "app"); err != nil {
				t.Fatalf("CreateDatabase: %+v", err)
			}
		}
		conn := connect(t, inst.URL("app"))
		if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Stop twice is fine", func(t *testing.T) {
		for range 2 {
			if err := inst.Stop(); err != nil {
				t.Fatalf("Stop: %+v", err)
			}
		}
	})

	t.Run("Start again reuses the cluster", func(t *testing.T) {
		inst := start(t, dir)
		var v string
		if err := connect(t, inst.URL("app")).QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "before restart" {
			t.Fatalf("row after restart = %q, %v", v, err)
		}
	})
}

func TestForTestGivesFreshEmptyDatabases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	first, second := pglocal.ForTest(t), pglocal.ForTest(t)

	a, b := connect(t, first), connect(t, second)
	var nameA, nameB string
	if err := a.QueryRow(ctx, "SELECT current_database()").Scan(&nameA); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(ctx, "SELECT current_database()").Scan(&nameB); err != nil {
		t.Fatal(err)
	}
	if nameA == nameB {
		t.Fatalf("both calls gave database %s", nameA)
	}
	if _, err := a.Exec(ctx, "CREATE TABLE only_in_first (id int)"); err != nil {
		t.Fatal(err)
	}
	var tables int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("second database has %d tables, %v; want 0", tables, err)
	}

	var dropped string
	t.Run("drops the database when the test ends", func(t *testing.T) {
		cfg, err := pgx.ParseConfig(pglocal.ForTest(t))
		if err != nil {
			t.Fatal(err)
		}
		dropped = cfg.Database
	})
	var exists bool
	if err := a.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", dropped).Scan(&exists); err != nil || exists {
		t.Errorf("database %s exists = %v, %v after its test ended", dropped, exists, err)
	}
}

func TestForTestOnTestDatabaseURL(t *testing.T) {
	// The private instance stands in for an external server.
	server := pglocal.ForTest(t)
	cfg, err := pgx.ParseConfig(server)
	if err != nil {
		t.Fatal(err)
	}
	for form, url := range map[string]string{
		"keyword/value": server,
		"URL":           "postgres:///" + cfg.Database + "?host=" + cfg.Host + "&port=5432&user=postgres&sslmode=disable",
	} {
		t.Run(form, func(t *testing.T) {
			t.Setenv("TEST_DATABASE_URL", url)
			got := pglocal.ForTest(t)
			var name string
			if err := connect(t, got).QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
				t.Fatal(err)
			}
			if name == cfg.Database || !strings.HasPrefix(name, "t_") {
				t.Errorf("ForTest gave database %s on TEST_DATABASE_URL %s; want a new t_ database", name, url)
			}
		})
	}
}

func TestStartRefusals(t *testing.T) {
	t.Run("no binaries installed", func(t *testing.T) {
		t.Setenv("PG_BIN", "")
		t.Setenv("PATH", t.TempDir())
		t.Cleanup(pglocal.SetBinGlob(filepath.Join(t.TempDir(), "*", "bin")))
		_, err := pglocal.Start(t.Context(), dataDir(t))
		if err == nil || !strings.Contains(err.Error(), "no PostgreSQL server binaries found") {
			t.Fatalf("error = %v; want no binaries found", err)
		}
		t.Logf("error: %v; hint: %s", err, errors.FlattenHints(err))
		if hint := errors.FlattenHints(err); !strings.Contains(hint, "apt-get install postgresql") || !strings.Contains(hint, "DATABASE_URL") {
			t.Errorf("hint = %q", hint)
		}
	})

	t.Run("a non-empty directory without a cluster", func(t *testing.T) {
		dir := dataDir(t)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := pglocal.Start(t.Context(), dir)
		if err == nil || !strings.Contains(err.Error(), "holds no PostgreSQL cluster") {
			t.Fatalf("error = %v; want it to say there is no cluster", err)
		}
		t.Logf("error: %v; hint: %s", err, errors.FlattenHints(err))
	})

	t.Run("as root, a data directory the postgres user cannot reach", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only root hands the server to the postgres user")
		}
		_, err := pglocal.Start(t.Context(), filepath.Join(t.TempDir(), "data"))
		if err == nil || !strings.Contains(err.Error(), "cannot enter") {
			t.Fatalf("error = %v; want it to name the closed directory", err)
		}
		t.Logf("error: %v; hint: %s", err, errors.FlattenHints(err))
	})
}
