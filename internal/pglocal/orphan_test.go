package pglocal_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderengine/engine/internal/pglocal"
)

// ownerEnv makes the test binary a process that starts a server on the
// data directory it names, prints the server's pid and waits to be killed.
const ownerEnv = "PGLOCAL_TEST_OWNER_DIR"

// runOwner is the test binary's life as such an owner, called by TestMain.
func runOwner(dir string) {
	inst, err := pglocal.Start(context.Background(), dir)
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("pid %d\n", inst.PID())
	select {}
}

// gone reports whether pid has exited (a zombie that nobody reaped counts
// as exited).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	s := string(b)
	return strings.HasPrefix(strings.TrimSpace(s[strings.LastIndex(s, ")")+1:]), "Z")
}

func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL pid %d still running %s later", pid, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServerDiesWithItsOwner(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	owner := exec.Command(os.Args[0], "-test.run=^$")
	owner.Env = append(os.Environ(), ownerEnv+"="+dir)
	owner.Stderr = os.Stderr
	out, err := owner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	pidText, ok := strings.CutPrefix(strings.TrimSpace(line), "pid ")
	if err != nil || !ok {
		_ = owner.Process.Kill()
		_ = owner.Wait()
		t.Fatalf("owner said %q, %v", line, err)
	}
	pid, _ := strconv.Atoi(pidText)
	if gone(pid) {
		t.Fatalf("no server at pid %d", pid)
	}
	// Should the server outlive its owner, this test must not leave it.
	t.Cleanup(func() {
		if !gone(pid) {
			_ = syscall.Kill(pid, syscall.SIGQUIT)
		}
	})
	if err := owner.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = owner.Wait()
	waitGone(t, pid, 15*time.Second)
	// And the next owner starts at once, without recovery.
	start(t, dir)
}

func TestStopOrphan(t *testing.T) {
	t.Parallel()
	t.Run("stops a server its owner left running, then Start works", func(t *testing.T) {
		t.Parallel()
		dir := dataDir(t)
		pid, err := pglocal.StartDetached(t.Context(), dir)
		if err != nil {
			t.Fatalf("StartDetached: %+v", err)
		}
		if _, err := pglocal.Start(t.Context(), dir); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("Start beside the orphan: %v; want already running", err)
		}
		stopped, err := pglocal.StopOrphan(dir)
		if err != nil || stopped != pid {
			_ = syscall.Kill(pid, syscall.SIGQUIT)
			t.Fatalf("StopOrphan = %d, %+v; want %d", stopped, err, pid)
		}
		waitGone(t, pid, 5*time.Second)
		start(t, dir)
	})

	t.Run("removes a postmaster.pid whose pid another process has", func(t *testing.T) {
		t.Parallel()
		dir := dataDir(t)
		if err := start(t, dir).Stop(); err != nil {
			t.Fatal(err)
		}
		// Our own pid: alive, and not a postgres process.
		stale := fmt.Sprintf("%d\n%s\n", os.Getpid(), dir)
		if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(stale), 0o600); err != nil {
			t.Fatal(err)
		}
		if stopped, err := pglocal.StopOrphan(dir); err != nil || stopped != 0 {
			t.Fatalf("StopOrphan = %d, %+v; want 0, nil", stopped, err)
		}
		start(t, dir)
	})

	t.Run("no server: nothing to do", func(t *testing.T) {
		t.Parallel()
		if stopped, err := pglocal.StopOrphan(dataDir(t)); err != nil || stopped != 0 {
			t.Fatalf("StopOrphan = %d, %+v; want 0, nil", stopped, err)
		}
	})
}
