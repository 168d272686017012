package pglocal

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// debianBinGlob is where Debian and Ubuntu install each major version's
// server binaries side by side. A variable so tests can hide them.
var debianBinGlob = "/usr/lib/postgresql/*/bin"

// installHint is the advice for a machine without PostgreSQL.
const installHint = "install PostgreSQL (apt-get install postgresql) or set DATABASE_URL"

// binaries is one installation's server binaries.
type binaries struct {
	dir string
	// major is the major version as PG_VERSION spells it ("15", "9.6").
	major string
}

func (b binaries) path(name string) string { return filepath.Join(b.dir, name) }

// findBinaries picks the server binaries. PG_BIN wins when set. Otherwise
// the candidates are pg_config --bindir, the Debian versioned directories
// from the newest down, and the directory of pg_ctl on PATH; the first one
// whose major version is want is taken, so an existing cluster keeps running
// on the version that created it, else the first candidate. The error says
// when no binaries are found at all.
func findBinaries(ctx context.Context, a account, want string) (binaries, error) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		if !hasServer(dir) {
			return binaries{}, errors.WithHint(
				errors.Newf("PG_BIN=%s holds no initdb, pg_ctl and postgres", dir),
				"point PG_BIN at a PostgreSQL bin directory such as /usr/lib/postgresql/15/bin, or unset it")
		}
		return probe(ctx, a, dir)
	}
	var first binaries
	for _, dir := range candidateDirs(ctx) {
		b, err := probe(ctx, a, dir)
		if err != nil {
			continue
		}
		if want == "" || b.major == want {
			return b, nil
		}
		if first.dir == "" {
			first = b
		}
	}
	if first.dir != "" {
		return first, nil
	}
	return binaries{}, errors.WithHint(
		errors.Newf("no PostgreSQL server binaries found (looked at PG_BIN, pg_config --bindir, %s and PATH)", debianBinGlob),
		installHint)
}

// candidateDirs lists the directories that may hold server binaries, most
// preferred first, without duplicates.
func candidateDirs(ctx context.Context) []string {
	var dirs []string
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		// On Debian pg_config may come from libpq-dev of another version
		// than the server; hasServer below weeds that out.
		if out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output(); err == nil {
			dirs = append(dirs, strings.TrimSpace(string(out)))
		}
	}
	versioned, _ := filepath.Glob(debianBinGlob)
	sort.Slice(versioned, func(i, j int) bool {
		return versionLess(filepath.Base(filepath.Dir(versioned[j])), filepath.Base(filepath.Dir(versioned[i])))
	})
	dirs = append(dirs, versioned...)
	if pgCtl, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(pgCtl))
	}
	var unique []string
	seen := map[string]bool{}
	for _, d := range dirs {
		if d != "" && !seen[d] && hasServer(d) {
			seen[d] = true
			unique = append(unique, d)
		}
	}
	return unique
}

func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// probe runs postgres --version in dir, as the account so that a binary the
// account cannot run is rejected here rather than in initdb.
func probe(ctx context.Context, a account, dir string) (binaries, error) {
	out, err := a.run(ctx, filepath.Join(dir, "postgres"), "--version")
	if err != nil {
		return binaries{}, errors.Wrapf(err, "probe %s", dir)
	}
	// "postgres (PostgreSQL) 15.8 (Debian 15.8-1.pgdg120+1)"
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		return binaries{}, errors.Newf("probe %s: unexpected postgres --version output %q", dir, out)
	}
	return binaries{dir: dir, major: majorVersion(fields[2])}, nil
}

// majorVersion turns a full version into PG_VERSION's spelling: "15" for
// 15.8 or 15beta1, "9.6" for 9.6.24 (before 10 the major had two parts).
func majorVersion(v string) string {
	end := strings.IndexFunc(v, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if end >= 0 {
		v = v[:end]
	}
	parts := strings.Split(v, ".")
	if n, err := strconv.Atoi(parts[0]); err == nil && n < 10 && len(parts) > 1 {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

// versionLess orders "9.6" before "10" before "15".
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errX := strconv.Atoi(as[i])
		y, errY := strconv.Atoi(bs[i])
		if errX != nil || errY != nil {
			return a < b
		}
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
