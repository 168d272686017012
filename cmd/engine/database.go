package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5/pgxpool"

	orderengine "github.com/orderengine/engine"
	"github.com/orderengine/engine/internal/pglocal"
)

// openDatabase connects to DATABASE_URL or, without one, starts a private
// Postgres from the installed binaries under ENGINE_DATA_DIR/postgres
// (reused on the next start), and applies schema.sql. closeDB closes the
// pool and stops the private Postgres, if one was started. Without
// DATABASE_URL the caller must hold ENGINE_DATA_DIR's lock (claimDataDir):
// a Postgres found running there is then stopped as an orphan.
func openDatabase(ctx context.Context, cfg config, stdout io.Writer, log *slog.Logger) (pool *pgxpool.Pool, closeDB func(), err error) {
	url := cfg.DatabaseURL
	stop := func() {}
	if url == "" {
		dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "postgres"))
		if err != nil {
			return nil, nil, errors.Wrap(err, "locate the private Postgres directory")
		}
		if err := traversable(filepath.Dir(dir)); err != nil {
			return nil, nil, err
		}
		// The caller holds ENGINE_DATA_DIR's lock, so a server still
		// running there belongs to an engine that died: ours to stop.
		orphan, err := pglocal.StopOrphan(dir)
		if err != nil {
			return nil, nil, err
		}
		if orphan != 0 {
			log.Warn("stopped the private Postgres an engine that died had left running", "pid", orphan, "dir", dir)
		}
		inst, err := pglocal.Start(ctx, dir)
		if err != nil {
			return nil, nil, errors.WithHint(errors.Wrap(err, "start a private Postgres"),
				"set DATABASE_URL to use an existing Postgres instead")
		}
		stop = func() {
			if err := inst.Stop(); err != nil {
				log.Error("stop the private Postgres", "err", err)
			}
		}
		if err := inst.CreateDatabase(ctx, "engine"); err != nil {
			stop()
			return nil, nil, err
		}
		url = inst.URL("engine")
		_, _ = io.WriteString(stdout, "DATABASE_URL is not set; started a private Postgres in "+dir+"\n")
	}
	pool, err = pgxpool.New(ctx, url)
	if err == nil {
		pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = pool.Ping(pingCtx)
		cancel()
		if err == nil {
			_, err = pool.Exec(ctx, orderengine.Schema)
		}
		if err != nil {
			pool.Close()
		}
	}
	if err != nil {
		stop()
		// The URL may hold a password: say where, not what.
		return nil, nil, errors.Wrap(err, "connect to the read-model database and apply schema.sql")
	}
	return pool, func() { pool.Close(); stop() }, nil
}

// traversable makes sure ENGINE_DATA_DIR exists and, when the engine runs as
// root (so Postgres runs as the postgres user), that other users may pass
// through it (search permission only, not listing): the private Postgres
// lives below it.
func traversable(dataDir string) error {
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		return errors.Wrapf(err, "create ENGINE_DATA_DIR %s", dataDir)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		return errors.Wrapf(err, "inspect ENGINE_DATA_DIR %s", dataDir)
	}
	if fi.Mode().Perm()&0o001 == 0 {
		if err := os.Chmod(dataDir, fi.Mode().Perm()|0o001); err != nil {
			return errors.Wrapf(err, "let the postgres user pass through %s", dataDir)
		}
	}
	return nil
}
