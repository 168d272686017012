package pglocal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
)

// Orphan waits: a fast shutdown writes a checkpoint first; an immediate one
// only waits for the server's processes to quit.
const (
	orphanFastWait      = 10 * time.Second
	orphanImmediateWait = 10 * time.Second
)

// StopOrphan stops a PostgreSQL server still running on dataDir, which the
// caller knows nobody uses any more: its owner died without stopping it,
// and the caller holds the lock that its owner held. It asks for a fast
// shutdown, then for an immediate one, and waits for the server to exit.
// It returns the pid it stopped, or 0 when no server was running.
//
// A postmaster.pid whose pid now belongs to another process (pids are
// reused, most often after a reboot) is stale, and removed, so that Start
// does not take it for a running server. It fails when it cannot tell
// whether the process is a server on dataDir (no /proc), or when the
// server does not exit.
func StopOrphan(dataDir string) (int, error) {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return 0, errors.Wrap(err, "data directory")
	}
	pid, running := postmasterPID(dataDir)
	if !running {
		return 0, nil
	}
	ours, err := serverOn(pid, dataDir)
	if err != nil {
		return 0, errors.WithHint(
			errors.Wrapf(err, "PostgreSQL may still be running on data directory %s (pid %d)", dataDir, pid),
			"stop it (pg_ctl stop -D "+dataDir+") and start again")
	}
	if !ours {
		err := os.Remove(filepath.Join(dataDir, "postmaster.pid"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, errors.Wrap(err, "remove the stale postmaster.pid")
		}
		return 0, nil
	}
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, orphanFastWait}, {syscall.SIGQUIT, orphanImmediateWait}} {
		if err := syscall.Kill(pid, step.sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return 0, errors.Wrapf(err, "signal PostgreSQL (pid %d) on %s", pid, dataDir)
		}
		if waitGone(pid, dataDir, step.wait) {
			return pid, nil
		}
	}
	return 0, errors.WithHint(
		errors.Newf("PostgreSQL (pid %d) on data directory %s did not exit after a fast and an immediate shutdown", pid, dataDir),
		fmt.Sprintf("kill -9 %d and its child processes, then start again", pid))
}

// waitGone waits up to wait until the server pid is gone from dataDir:
// the process has exited or its postmaster.pid is gone (the server removes
// it last; a process left unreaped by a careless init still exists).
func waitGone(pid int, dataDir string, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		if p, running := postmasterPID(dataDir); !running || p != pid {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverOn reports whether pid is a postgres process whose working
// directory is dataDir: the postmaster moves into its data directory, so
// this tells a server on dataDir from an unrelated process that got its pid.
func serverOn(pid int, dataDir string) (bool, error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if errors.Is(err, os.ErrNotExist) {
		// Exited meanwhile, or a process without an executable (a zombie
		// or a kernel thread): either way not a running server.
		return false, nil
	}
	if err != nil {
		return false, errors.Wrapf(err, "inspect process %d", pid)
	}
	if filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != "postgres" {
		return false, nil
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false, errors.Wrapf(err, "inspect process %d", pid)
	}
	want, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		return false, errors.Wrapf(err, "resolve %s", dataDir)
	}
	return cwd == want, nil
}
