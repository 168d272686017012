package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/internal/pglocal"
)

// runCmd runs one engine command with env and returns its error and how
// long it took.
func runCmd(t *testing.T, env map[string]string, args ...string) (error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err := run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
	return err, time.Since(start)
}

func TestDataDirInUseIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{
		"ENGINE_HTTP_ADDR":  "127.0.0.1:0",
		"ENGINE_DATA_DIR":   dir,
		"DATABASE_URL":      pglocal.ForTest(t),
		"ENGINE_API_TOKENS": "a:admin",
	}
	_, _, stop := startEngine(t, env)
	holder := fmt.Sprintf("in use by another engine (pid %d)", os.Getpid())
	for _, args := range [][]string{{"serve"}, {"export"}, {"verify"}, {"rebuild", "main"}} {
		t.Run(args[0], func(t *testing.T) {
			err, took := runCmd(t, env, args...)
			if err == nil || !strings.Contains(err.Error(), "ENGINE_DATA_DIR "+dir+" is in use") || !strings.Contains(err.Error(), holder) {
				t.Fatalf("%s beside a running engine: %v; want it refused, naming the directory and %q", args[0], err, holder)
			}
			if hint := errors.FlattenHints(err); !strings.Contains(hint, "NATS_URL") || !strings.Contains(hint, "/v1/audit/export") {
				t.Errorf("hint = %q; want it to say how to reach the running engine", hint)
			}
			// At once: not after a start-up timeout.
			if took > 5*time.Second {
				t.Errorf("refused after %s", took)
			}
		})
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	t.Run("free again once the engine stopped", func(t *testing.T) {
		if err, _ := runCmd(t, env, "export"); err != nil {
			t.Fatalf("export after the engine stopped: %v", err)
		}
	})
}

func TestUnusableDataDirFailsAtOnceByName(t *testing.T) {
	t.Parallel()
	// A regular file where a directory should be stops root too.
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "data")
	env := map[string]string{"ENGINE_HTTP_ADDR": "127.0.0.1:0", "ENGINE_DATA_DIR": dir, "ENGINE_API_TOKENS": "a:admin"}
	for _, args := range [][]string{{"serve"}, {"export"}, {"verify"}} {
		t.Run(args[0], func(t *testing.T) {
			err, took := runCmd(t, env, args...)
			if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not a directory") {
				t.Fatalf("%s on %s: %v; want an error naming the path and the reason", args[0], dir, err)
			}
			// The acceptance is "well under a second"; the margin is for a
			// busy machine.
			if took > 2*time.Second {
				t.Errorf("failed after %s", took)
			}
		})
	}
}

func TestServeStopsThePostgresADeadEngineLeftRunning(t *testing.T) {
	t.Parallel()
	dir := reachableDir(t)
	env := map[string]string{"ENGINE_HTTP_ADDR": "127.0.0.1:0", "ENGINE_DATA_DIR": dir, "ENGINE_API_TOKENS": "a:admin"}
	pgDir := filepath.Join(dir, "postgres")
	orphan, err := pglocal.StartDetached(t.Context(), pgDir)
	if err != nil {
		t.Fatalf("start the orphan: %+v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(orphan, syscall.SIGQUIT) })

	base, _, stop := startEngine(t, env)
	if code, _ := call(t, "PUT", base+"/v1/inventory/ORPHAN", "a", `{"on_hand": 1}`); code != 200 {
		t.Errorf("command after taking over: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := syscall.Kill(orphan, 0); err == nil && processExe(orphan) != "" {
		t.Errorf("the orphaned Postgres (pid %d) still runs", orphan)
	}
}

// processExe is the executable of pid, "" when it has exited (or is a
// zombie nobody reaped).
func processExe(pid int) string {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return exe
}
