package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cockroachdb/errors"
)

// lockFileName is the file under ENGINE_DATA_DIR whose flock says an engine
// process uses the directory; it holds that process's pid.
const lockFileName = "engine.lock"

// dataDirLock is the exclusive lock on ENGINE_DATA_DIR. The kernel drops it
// when the process ends, however it ends, so a lock that can be taken means
// nothing of ours still runs on the directory: whatever is found running
// there (a private Postgres) was left by a process that died.
type dataDirLock struct {
	f *os.File
}

// claimDataDir makes sure dir exists and is writable, then takes its lock
// for the process's lifetime or until release. It fails at once, naming
// the path and the reason, when the directory cannot be created or written,
// and naming the holder's pid when another process holds the lock; purpose
// says what would have used the directory, and what to do instead.
func claimDataDir(dir, purpose string) (*dataDirLock, error) {
	if err := writable(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, errors.Wrapf(err, "open the lock file of ENGINE_DATA_DIR %s", dir)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.Wrapf(err, "lock ENGINE_DATA_DIR %s", dir)
		}
		return nil, inUse(dir, path, purpose)
	}
	// The pid is for the message of the next process that finds the lock
	// taken; the lock itself is the flock.
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, errors.Wrapf(err, "write our pid into %s", path)
	}
	return &dataDirLock{f: f}, nil
}

// release drops the lock. A nil lock (the directory was not needed) is fine.
func (l *dataDirLock) release() {
	if l != nil {
		_ = l.f.Close()
	}
}

// inUse is the error for a data directory another process holds.
func inUse(dir, path, purpose string) error {
	holder := "another process"
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			holder = fmt.Sprintf("another engine (pid %d)", pid)
		}
	}
	return errors.WithHint(
		errors.Newf("ENGINE_DATA_DIR %s is in use by %s: %s needs it to itself", dir, holder, purpose),
		"stop that engine first, or give this one another ENGINE_DATA_DIR; to read a running engine's events use its API "+
			"(GET /v1/audit/export, GET /v1/audit/verify), or run the engine on an external NATS_URL and DATABASE_URL "+
			"and point this command at them")
}

// writable creates dir if needed and proves that a file in it can be
// created, written, fsynced and removed, so that a directory we cannot use
// fails here, at once and by name, instead of deep inside the embedded
// nats-server or Postgres. As root (the private Postgres then runs as the
// postgres user) it also lets other users pass through dir.
func writable(dir string) error {
	const hint = "give the engine's user write access to it, or set ENGINE_DATA_DIR to a directory it can write"
	if err := traversable(dir); err != nil {
		return errors.WithHint(err, hint)
	}
	probe, err := os.CreateTemp(dir, ".write-probe-")
	if err == nil {
		_, err = probe.WriteString("probe\n")
		if err == nil {
			err = probe.Sync()
		}
		err = errors.CombineErrors(err, probe.Close())
		err = errors.CombineErrors(err, os.Remove(probe.Name()))
	}
	if err != nil {
		return errors.WithHint(errors.Wrapf(err, "ENGINE_DATA_DIR %s is not writable", dir), hint)
	}
	return nil
}
