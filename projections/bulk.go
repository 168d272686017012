package projections

import (
	"context"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
)

// bulkDeferred lists what a bulk replay into schema builds after the rows
// rather than row by row: the foreign keys, and the indexes that are not
// unique and back no constraint (the ones only queries need). Each row is
// the statement that drops the object and the one that creates it again
// exactly as it is (pg_get_constraintdef, pg_get_indexdef), so schema.sql
// stays the one description of the read models. Primary keys and unique
// indexes stay: the projection looks rows up and upserts through them.
const bulkDeferred = `SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
	format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
FROM pg_constraint
WHERE connamespace = $1::regnamespace AND contype = 'f'
UNION ALL
SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relnamespace = $1::regnamespace AND NOT i.indisunique
	AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY 2`

// dropForBulk drops from schema, which must not be the live one, the
// objects bulkDeferred lists, and returns the statements that create them
// again; a replay into schema must run them before anything reads it.
//
// Maintaining three secondary indexes of rm.orders and checking the
// foreign key of every rm.order_lines row took ~40% of a rebuild's
// Postgres time; building each once at the end, by a sort or one join,
// costs a fraction of that. Nothing the projection writes can break the
// foreign key (an order's lines are written with, and after, its row,
// and no row is ever deleted), so checking it once at the end refuses
// exactly what checking it per row would.
func dropForBulk(ctx context.Context, db execQuerier, schema string) ([]string, error) {
	if schema == LiveSchema {
		return nil, errors.AssertionFailedf("refusing to drop indexes of the live schema")
	}
	rows, err := db.Query(ctx, bulkDeferred, schema)
	if err != nil {
		return nil, errors.Wrapf(err, "list the indexes and foreign keys of %s", schema)
	}
	type ddl struct{ drop, create string }
	objects, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ddl, error) {
		var d ddl
		return d, row.Scan(&d.drop, &d.create)
	})
	if err != nil {
		return nil, errors.Wrapf(err, "list the indexes and foreign keys of %s", schema)
	}
	restore := make([]string, 0, len(objects))
	for _, o := range objects {
		if _, err := db.Exec(ctx, o.drop); err != nil {
			return nil, errors.Wrapf(err, "%s", o.drop)
		}
		restore = append(restore, o.create)
	}
	return restore, nil
}

// restoreAfterBulk runs the statements dropForBulk returned.
func restoreAfterBulk(ctx context.Context, db execer, restore []string) error {
	for _, q := range restore {
		if _, err := db.Exec(ctx, q); err != nil {
			return errors.Wrapf(err, "%s", q)
		}
	}
	return nil
}

// execQuerier is what dropForBulk needs: a connection or a transaction.
type execQuerier interface {
	execer
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}
