// Package pglocal runs a private PostgreSQL server from the binaries
// installed on the machine, listening only on a unix socket in a directory
// of its own, for the engine's embedded mode and for tests (see ForTest).
//
// As root, which PostgreSQL refuses, the binaries run as the postgres system
// user, which then owns the data directory; every directory above the data
// directory must be enterable by that user.
package pglocal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// port only names the socket file (.s.PGSQL.5432): each instance has its
	// own socket directory, so instances cannot collide.
	port = 5432
	// superuser is the role initdb creates, whatever our OS user is.
	superuser = "postgres"
	// settingsFile holds what Start writes on every start; postgresql.conf
	// includes it.
	settingsFile = "pglocal.conf"
	// logFile is inside the data directory because, as root, only that
	// directory is sure to be writable by the postgres user.
	logFile = "postgres.log"
	// startWait bounds the wait for a start (crash recovery included).
	startWait = 60 * time.Second
	// fastStopWait and immediateStopWait bound Stop's waits for a fast
	// shutdown (a checkpoint), then for an immediate one.
	fastStopWait      = 60 * time.Second
	immediateStopWait = 30 * time.Second
)

// Instance is a private Postgres server started from the installed binaries.
type Instance struct {
	bin     binaries
	acct    account
	dataDir string
	sockDir string

	// pm is the server process, our child.
	pm *postmaster

	mu      sync.Mutex
	stopped bool
}

// setting is one postgresql.conf parameter.
type setting struct{ name, value string }

// options are what the test instance sets beyond Start.
type options struct {
	settings []setting
	// sockBase, if set, is tried first for the socket directory.
	sockBase string
}

// Start initialises dataDir with initdb if it holds no cluster yet (trust
// authentication on the local socket only, UTF8, fsync kept on), writes the
// settings that make it listen only on a fresh unix socket directory, and
// starts the server as a child process that dies with ours (see
// startPostmaster), waiting up to 60s until it accepts connections. The
// server log is dataDir/postgres.log. A dataDir already holding a cluster
// is reused.
//
// Start fails when the server is already running on dataDir, when dataDir is
// a non-empty directory holding no cluster, when the cluster was created by
// another major version than the binaries found, and when no PostgreSQL
// binaries are installed (with a hint to install them or set DATABASE_URL).
func Start(ctx context.Context, dataDir string) (*Instance, error) {
	return start(ctx, dataDir, options{})
}

func start(ctx context.Context, dataDir string, opts options) (*Instance, error) {
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, errors.Wrap(err, "data directory")
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	if err := checkReachable(acct, dataDir); err != nil {
		return nil, err
	}
	existing, err := clusterVersion(dataDir)
	if err != nil {
		return nil, err
	}
	bin, err := findBinaries(ctx, acct, existing)
	if err != nil {
		return nil, err
	}
	if existing == "" {
		if err := initCluster(ctx, acct, bin, dataDir); err != nil {
			return nil, err
		}
	} else if err := checkCluster(acct, bin, dataDir, existing); err != nil {
		return nil, err
	}

	var bases []string
	if opts.sockBase != "" {
		bases = append(bases, opts.sockBase)
	}
	sockDir, err := acct.socketDir(bases...)
	if err != nil {
		return nil, err
	}
	inst := &Instance{bin: bin, acct: acct, dataDir: dataDir, sockDir: sockDir}
	if err := inst.writeSettings(opts.settings); err != nil {
		_ = os.RemoveAll(sockDir)
		return nil, err
	}
	if err := inst.run(ctx); err != nil {
		_ = os.RemoveAll(sockDir)
		log, _ := os.ReadFile(filepath.Join(dataDir, logFile))
		return nil, errors.WithDetailf(
			errors.Wrapf(err, "start PostgreSQL %s on %s; %s ends with: %s", bin.major, dataDir, logFile, tail(log, 3)),
			"binaries: %s", bin.dir)
	}
	return inst, nil
}

// checkReachable fails when, as root, the postgres user could not get
// through dataDir's parents.
func checkReachable(acct account, dataDir string) error {
	if blocked := acct.blockedDir(filepath.Dir(dataDir)); blocked != "" {
		return errors.WithHint(
			errors.Newf("the postgres user cannot enter %s, so it cannot reach data directory %s", blocked, dataDir),
			"put the data directory under a directory every user can enter, such as one made with os.MkdirTemp and chmod 0711 (t.TempDir() is under a 0700 directory)")
	}
	return nil
}

// clusterVersion returns the major version in dataDir/PG_VERSION, or ""
// when dataDir is missing or empty. A non-empty directory without a cluster
// is an error: initdb would refuse it, and it is likely a wrong path.
func clusterVersion(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	entries, dirErr := os.ReadDir(dataDir)
	if errors.Is(dirErr, os.ErrNotExist) || (dirErr == nil && len(entries) == 0) {
		return "", nil
	}
	if dirErr != nil {
		return "", errors.Wrapf(dirErr, "read data directory %s", dataDir)
	}
	return "", errors.WithHint(
		errors.Newf("data directory %s is not empty and holds no PostgreSQL cluster (no PG_VERSION)", dataDir),
		"point Start at an empty or missing directory, or at an existing cluster")
}

// initCluster creates dataDir and runs initdb in it.
func initCluster(ctx context.Context, acct account, bin binaries, dataDir string) error {
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return errors.Wrap(err, "create the data directory's parent")
	}
	// A restrictive umask may have made the new parents closed.
	if err := checkReachable(acct, dataDir); err != nil {
		return err
	}
	if err := os.Mkdir(dataDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return errors.Wrap(err, "create the data directory")
	}
	if err := acct.own(dataDir); err != nil {
		return err
	}
	// No --no-sync: this may hold real data, and initdb's final fsync is
	// what makes the fresh cluster survive a crash.
	_, err := acct.run(ctx, bin.path("initdb"),
		"-D", dataDir,
		"-U", superuser,
		"--encoding=UTF8",
		// C collation is byte order: stable across glibc upgrades, which
		// would otherwise silently corrupt text indexes.
		"--locale=C",
		"--auth-local=trust",
		"--auth-host=reject",
	)
	return errors.Wrapf(err, "initialise a PostgreSQL %s cluster in %s", bin.major, dataDir)
}

// checkCluster refuses an existing cluster that these binaries cannot run,
// with clearer errors than postgres would give.
func checkCluster(acct account, bin binaries, dataDir, version string) error {
	if pid, running := postmasterPID(dataDir); running {
		return errors.WithHint(
			errors.Newf("PostgreSQL is already running on data directory %s (pid %d)", dataDir, pid),
			"stop that server first (pg_ctl stop -D "+dataDir+") or start on another data directory")
	}
	if version != bin.major {
		return errors.WithHint(
			errors.Newf("data directory %s holds a PostgreSQL %s cluster but the binaries in %s are PostgreSQL %s", dataDir, version, bin.dir, bin.major),
			"set PG_BIN to the bin directory of PostgreSQL "+version+", or upgrade the cluster with pg_upgrade")
	}
	if fi, err := os.Stat(dataDir); err == nil && acct.cred != nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != acct.uid {
			return errors.WithHint(
				errors.Newf("data directory %s is not owned by the postgres user, which runs the server when we are root", dataDir),
				"chown -R postgres: "+dataDir)
		}
	}
	return nil
}

// writeSettings writes the settings file postgresql.conf includes.
func (i *Instance) writeSettings(extra []setting) error {
	settings := append([]setting{
		{"listen_addresses", ""},
		{"unix_socket_directories", i.sockDir},
		{"port", fmt.Sprint(port)},
	}, extra...)
	var b strings.Builder
	b.WriteString("# Written by pglocal on every start; edits are lost.\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "%s = '%s'\n", s.name, strings.ReplaceAll(s.value, "'", "''"))
	}
	file := filepath.Join(i.dataDir, settingsFile)
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return errors.Wrap(err, "write the server settings")
	}
	if err := i.acct.own(file); err != nil {
		return err
	}
	return includeSettings(filepath.Join(i.dataDir, "postgresql.conf"))
}

// includeLine makes postgresql.conf read our settings. It is include, not
// include_if_exists, because without them the server would listen on TCP.
const includeLine = "include = '" + settingsFile + "'"

// includeSettings appends includeLine to conf unless it is there already.
// Checking on every start, not only after initdb, also covers clusters that
// were created outside pglocal.
func includeSettings(conf string) error {
	b, err := os.ReadFile(conf)
	if err != nil {
		return errors.Wrap(err, "read postgresql.conf")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == includeLine {
			return nil
		}
	}
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return errors.Wrap(err, "open postgresql.conf")
	}
	if _, err := f.WriteString("\n# pglocal rewrites " + settingsFile + " on every start.\n" + includeLine + "\n"); err != nil {
		_ = f.Close()
		return errors.Wrap(err, "append to postgresql.conf")
	}
	return errors.Wrap(f.Close(), "close postgresql.conf")
}

// PID is the server's process id.
func (i *Instance) PID() int { return i.pm.pid }

// URL is a libpq/pgx connection string for database name over the unix
// socket, as the superuser the cluster was initialised with ("postgres").
func (i *Instance) URL(dbname string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		quoteConnValue(i.sockDir), port, superuser, quoteConnValue(dbname))
}

// quoteConnValue quotes v for a keyword/value connection string when it
// holds spaces, quotes or backslashes.
func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\v\f'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// CreateDatabase creates database name if it does not exist. It fails when
// the name is empty or longer than PostgreSQL's 63 bytes, or when the server
// cannot be reached.
func (i *Instance) CreateDatabase(ctx context.Context, name string) error {
	return createDatabase(ctx, i.URL("postgres"), name)
}

// createDatabase creates name on the server adminURL connects to.
func createDatabase(ctx context.Context, adminURL, name string) error {
	// Longer names would be silently truncated, and then not be the
	// database the caller connects to.
	if name == "" || len(name) > 63 || strings.ContainsRune(name, 0) {
		return errors.Newf("invalid database name %q: it needs 1 to 63 bytes and no NUL", name)
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return errors.Wrap(err, "connect to create a database")
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var exists bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		return errors.Wrapf(err, "look up database %s", name)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	// A concurrent creator may win the race between the lookup and CREATE:
	// duplicate_database, or unique_violation on pg_database's name index.
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil
	}
	return errors.Wrapf(err, "create database %s", name)
}

// Stop stops the server (a fast shutdown: open sessions are cut, the data
// is checkpointed; after 60s an immediate one) and waits for it to exit.
// Calling it again, or on a server someone else stopped, returns nil. The
// error says when the server is still running.
func (i *Instance) Stop() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return nil
	}
	if err := i.pm.stop(fastStopWait, immediateStopWait); err != nil {
		return errors.Wrapf(err, "stop PostgreSQL on %s", i.dataDir)
	}
	i.stopped = true
	return errors.Wrap(os.RemoveAll(i.sockDir), "remove the socket directory")
}

// run starts the server as our child and waits until it accepts
// connections; a server that does not get there is stopped again.
func (i *Instance) run(ctx context.Context) error {
	pm, err := i.acct.startPostmaster(i.bin, i.dataDir, filepath.Join(i.dataDir, logFile))
	if err != nil {
		return err
	}
	if err := pm.waitReady(ctx, i.dataDir, startWait); err != nil {
		_ = pm.stop(5*time.Second, immediateStopWait)
		return err
	}
	i.pm = pm
	return nil
}
