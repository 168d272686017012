package pglocal

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
)

// deathSignal is what the kernel sends the postmaster when its parent, the
// process that started it, dies: SIGINT is PostgreSQL's fast shutdown
// (sessions are cut, a checkpoint is written), so a crashed engine leaves
// no server behind and the next start needs no crash recovery.
const deathSignal = syscall.SIGINT

// postmaster is a PostgreSQL server running as our child.
type postmaster struct {
	pid int
	// exited is closed once the process has exited and been reaped.
	exited chan struct{}
}

// startPostmaster runs postgres -D dataDir as the account, as our child in
// a session of its own (a Ctrl-C at the terminal is for the engine, which
// stops the server itself once its last write is flushed), with its output
// appended to logPath, and with deathSignal as its parent-death signal.
//
// The kernel sends the parent-death signal when the thread that forked the
// child ends, not the process, and the Go runtime may end threads. So the
// fork happens on a goroutine locked to its thread, which then waits for
// the server's exit and only then lets the thread go. The runtime sets the
// credentials of the child before the parent-death signal, whose setting a
// change of credentials would clear.
func (a account) startPostmaster(bin binaries, dataDir, logPath string) (*postmaster, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errors.Wrapf(err, "open the server log %s", logPath)
	}
	defer func() { _ = logf.Close() }()
	if err := a.own(logPath); err != nil {
		return nil, err
	}
	pm := &postmaster{exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after the
		// server has exited.
		cmd := a.command(context.Background(), bin.path("postgres"), "-D", dataDir)
		cmd.Stdout, cmd.Stderr = logf, logf
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Setsid = true
		cmd.SysProcAttr.Pdeathsig = deathSignal
		if err := cmd.Start(); err != nil {
			started <- errors.Wrap(err, "start postgres")
			return
		}
		pm.pid = cmd.Process.Pid
		started <- nil
		_ = cmd.Wait()
		close(pm.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return pm, nil
}

// waitReady waits until postmaster.pid says the server is ready for
// connections, as pg_ctl -w does. It fails when the server exits first,
// or when ctx ends or timeout passes (the caller then stops the server).
func (pm *postmaster) waitReady(ctx context.Context, dataDir string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if pidFileStatus(dataDir, pm.pid) == "ready" {
			return nil
		}
		select {
		case <-pm.exited:
			return errors.New("the server exited during start-up")
		case <-ctx.Done():
			return errors.Wrap(ctx.Err(), "wait for the server to accept connections")
		case <-deadline.C:
			return errors.Newf("the server did not accept connections within %s", timeout)
		case <-tick.C:
		}
	}
}

// stop asks for a fast shutdown and waits up to fast for the exit, then for
// an immediate one (crash recovery on the next start) and waits up to
// immediate. The error says the server is still running.
func (pm *postmaster) stop(fast, immediate time.Duration) error {
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, fast}, {syscall.SIGQUIT, immediate}} {
		select {
		case <-pm.exited:
			return nil
		default:
		}
		_ = syscall.Kill(pm.pid, step.sig)
		select {
		case <-pm.exited:
			return nil
		case <-time.After(step.wait):
		}
	}
	return errors.Newf("PostgreSQL (pid %d) is still running after a fast and an immediate shutdown", pm.pid)
}

// pidFileStatus returns the status line (the 8th: "starting", "ready",
// "stopping") of dataDir/postmaster.pid when its first line is pid, else "".
func pidFileStatus(dataDir string, pid int) string {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 || strings.TrimSpace(lines[0]) != strconv.Itoa(pid) {
		return ""
	}
	return strings.TrimSpace(lines[7])
}
