package pglocal

import (
	"context"
	"path/filepath"

	"github.com/cockroachdb/errors"
)

// SetBinGlob points the search for versioned bin directories at glob, so a
// test can pretend PostgreSQL is not installed, and returns the undo.
func SetBinGlob(glob string) (restore func()) {
	old := debianBinGlob
	debianBinGlob = glob
	return func() { debianBinGlob = old }
}

// StartDetached starts a server on dataDir (initialising it first) the way
// pg_ctl does, as a daemon that is not our child and outlives us: what a
// crashed owner leaves behind when the parent-death signal did not reach
// the server. It returns the server's pid.
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
