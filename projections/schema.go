package projections

import (
	"context"
	"regexp"
	"strings"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	orderengine "github.com/orderengine/engine"
)

// The Postgres schemas of the read models: LiveSchema is the one queries
// read; a rebuild builds NextSchema and swaps it in, and a replay
// comparison builds VerifySchema and drops it.
const (
	LiveSchema   = "rm"
	NextSchema   = "rm_next"
	VerifySchema = "rm_verify"
	// oldSchema is where the replaced read models wait to be dropped.
	oldSchema = "rm_old"
)

// schemaName is what a target schema may be called: a plain lower-case
// identifier, so it can go into SQL text unquoted.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// rmQualified matches the schema qualifier "rm." of every read-model table
// in schema.sql and in the projection's statements; \b keeps it from
// matching the end of a longer name.
var rmQualified = regexp.MustCompile(`\brm\.`)

// inSchema returns sql with every "rm." qualifier naming schema instead.
// The statements it rewrites are the package's own and schema.sql, which
// name the read models only as rm.<table>.
func inSchema(sql, schema string) string {
	if schema == LiveSchema {
		return sql
	}
	return rmQualified.ReplaceAllLiteralString(sql, schema+".")
}

// schemaDDL returns schema.sql creating the read models in schema.
func schemaDDL(schema string) (string, error) {
	if !schemaName.MatchString(schema) {
		return "", errors.AssertionFailedf("bad schema name %q", schema)
	}
	ddl := orderengine.Schema
	const create = "CREATE SCHEMA IF NOT EXISTS rm;"
	if !strings.Contains(ddl, create) {
		return "", errors.AssertionFailedf("schema.sql does not hold %q", create)
	}
	ddl = strings.Replace(ddl, create, "CREATE SCHEMA IF NOT EXISTS "+schema+";", 1)
	return inSchema(ddl, schema), nil
}

// execer is what recreateSchema needs: a connection or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// recreateSchema drops schema, with everything in it, and creates the read
// models in it afresh, empty.
func recreateSchema(ctx context.Context, db execer, schema string) error {
	if schema == LiveSchema {
		return errors.AssertionFailedf("refusing to recreate the live schema")
	}
	ddl, err := schemaDDL(schema)
	if err != nil {
		return err
	}
	if _, err := db.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
		return errors.Wrapf(err, "drop schema %s", schema)
	}
	_, err = db.Exec(ctx, ddl)
	return errors.Wrapf(err, "create schema %s", schema)
}

// beginner starts a transaction: *pgxpool.Pool, *pgxpool.Conn, *pgx.Conn,
// and pgx.Tx (a savepoint) all do.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// schemaTx is a transaction whose statements name schema wherever the
// projection's SQL names rm.
type schemaTx struct {
	pgx.Tx
	schema string
}

func wrapTx(tx pgx.Tx, schema string) pgx.Tx {
	if schema == LiveSchema {
		return tx
	}
	return schemaTx{Tx: tx, schema: schema}
}

func (t schemaTx) Begin(ctx context.Context) (pgx.Tx, error) {
	sp, err := t.Tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return schemaTx{Tx: sp, schema: t.schema}, nil
}

func (t schemaTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.Tx.Exec(ctx, inSchema(sql, t.schema), args...)
}

func (t schemaTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.Tx.Query(ctx, inSchema(sql, t.schema), args...)
}

func (t schemaTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.Tx.QueryRow(ctx, inSchema(sql, t.schema), args...)
}

func (t schemaTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	for _, q := range b.QueuedQueries {
		q.SQL = inSchema(q.SQL, t.schema)
	}
	return t.Tx.SendBatch(ctx, b)
}

// CopyFrom copies into the schema's table of the same name as an rm one.
func (t schemaTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if len(table) == 2 && table[0] == LiveSchema {
		table = pgx.Identifier{t.schema, table[1]}
	}
	return t.Tx.CopyFrom(ctx, table, columns, src)
}

func (t schemaTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.Tx.Prepare(ctx, name, inSchema(sql, t.schema))
}
