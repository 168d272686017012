package pglocal

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
)

// maxSocketPath is the longest unix socket path PostgreSQL accepts
// (sizeof(sun_path) - 1 on Linux).
const maxSocketPath = 107

// account is the OS user the server binaries run as: ourselves, or the
// postgres system user when we are root, because initdb, pg_ctl and postgres
// all refuse to run as root.
type account struct {
	uid, gid int
	// cred is nil when the binaries run as ourselves.
	cred *syscall.Credential
}

// serverAccount returns the account to run the server binaries as. As root
// it is the postgres system user, and the error says so when that user does
// not exist.
func serverAccount() (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return account{}, errors.WithHint(
			errors.Wrap(err, "running as root, which PostgreSQL refuses, and there is no postgres system user to run it as"),
			"install PostgreSQL (apt-get install postgresql creates the postgres user) or run as an unprivileged user")
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return account{}, errors.Wrapf(err, "uid of the postgres user")
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return account{}, errors.Wrapf(err, "gid of the postgres user")
	}
	return account{
		uid: int(uid), gid: int(gid),
		// An empty Groups list drops root's supplementary groups too.
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
	}, nil
}

// command prepares path to run as the account.
func (a account) command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	// Our working directory may be one the postgres user cannot enter (under
	// /root), which initdb and postgres complain about.
	cmd.Dir = "/"
	cmd.Env = serverEnv()
	// pg_ctl's postmaster must not hold our output pipe open; if a future
	// version did, Wait would otherwise block for the server's lifetime.
	cmd.WaitDelay = 5 * time.Second
	if a.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.cred}
	}
	return cmd
}

// run runs path as the account. The error carries the tail of its output,
// which is where initdb and pg_ctl explain themselves.
func (a account) run(ctx context.Context, path string, args ...string) ([]byte, error) {
	out, err := a.command(ctx, path, args...).CombinedOutput()
	if err != nil {
		return out, errors.Wrapf(err, "%s: %s", filepath.Base(path), tail(out, 5))
	}
	return out, nil
}

// serverEnv is our environment without the PG* variables, so that a
// developer's PGDATA, PGPORT or PGOPTIONS cannot steer the private server.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// own gives path to the account, so the server can use a directory we
// created. Running as ourselves there is nothing to do.
func (a account) own(path string) error {
	if a.cred == nil {
		return nil
	}
	return errors.Wrapf(os.Chown(path, a.uid, a.gid), "give %s to the postgres user", path)
}

// blockedDir returns the first of dir and its ancestors that the account
// cannot enter, or "" when the whole path is open to it. Directories that do
// not exist yet are skipped: we create them world-traversable. It reads only
// the mode bits (no ACLs), which is what a root-owned 0700 directory such as
// /root or the parent of t.TempDir() trips on.
func (a account) blockedDir(dir string) string {
	if a.cred == nil {
		return ""
	}
	var chain []string
	for d := dir; ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		fi, err := os.Stat(chain[i])
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		perm := fi.Mode().Perm()
		var enter bool
		switch {
		case int(st.Uid) == a.uid:
			enter = perm&0o100 != 0
		case int(st.Gid) == a.gid:
			enter = perm&0o010 != 0
		default:
			enter = perm&0o001 != 0
		}
		if !enter {
			return chain[i]
		}
	}
	return ""
}

// socketDir creates a fresh directory for the server's unix socket, owned
// by the account, in the first of bases, os.TempDir() and /tmp that is short
// enough and open to the account. Not in the data directory: socket paths
// are limited to 107 bytes, and the data directory's parents may be closed
// to the account.
func (a account) socketDir(bases ...string) (string, error) {
	for _, base := range append(bases, os.TempDir(), "/tmp") {
		// "pglocal-" plus MkdirTemp's random suffix and the socket file name.
		if len(base)+len("/pglocal-1234567890/.s.PGSQL.5432") > maxSocketPath || a.blockedDir(base) != "" {
			continue
		}
		dir, err := os.MkdirTemp(base, "pglocal-")
		if err != nil {
			return "", errors.Wrap(err, "create the socket directory")
		}
		if err := a.own(dir); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
		return dir, nil
	}
	return "", errors.WithHint(
		errors.Newf("no directory for the server's unix socket: %s is too long or closed to the postgres user", os.TempDir()),
		"set TMPDIR to a short directory every user can enter, such as /tmp")
}

// postmasterPID returns the pid recorded in dataDir/postmaster.pid when that
// process is alive. Like pg_ctl, it trusts a live pid, so a stale file whose
// pid was reused by another process also counts as running.
func postmasterPID(dataDir string) (int, bool) {
	pid, err := readPID(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	return pid, processAlive(pid)
}

// readPID reads the pid on the first line of file.
func readPID(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil || pid <= 0 {
		return 0, errors.Newf("%s holds no pid", file)
	}
	return pid, nil
}

// processAlive reports whether pid exists; EPERM means it does but belongs
// to another user.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// tail returns the last n non-empty lines of out on one line.
func tail(out []byte, n int) string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	return strings.Join(lines, " | ")
}
