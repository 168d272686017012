package projections

import (
	"context"

	"github.com/cockroachdb/errors"
	"github.com/google/uuid"
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

// copy writes the rows of p, when there is p, with COPY: one for
// the orders, one for their lines. A rebuild's bulk replay uses it: the
// orders a batch places are new rows there, since the tables start empty
// and every batch applies only events above the checkpoint, and COPY
// writes them in a fraction of the time of an INSERT ... ON CONFLICT from
// unnest'ed arrays. Were one there after all, its primary key would refuse
// the batch rather than let a row be written twice.
func (p *placedRows) copy(ctx context.Context, tx pgx.Tx) error {
	if p == nil || len(p.ins.id) == 0 {
		return nil
	}
	ids := make(map[string][16]byte, len(p.ins.id))
	for _, id := range p.ins.id {
		u, err := uuid.Parse(id)
		if err != nil {
			return errors.Mark(errors.Wrapf(err, "order id %q", id), errPoison)
		}
		ids[id] = u
	}
	ins := &p.ins
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"rm", "orders"},
		[]string{"order_id", "customer_id", "status", "currency", "total_cents", "refund_due_cents", "version", "created_at", "updated_at",
			"refunded_cents"},
		pgx.CopyFromSlice(len(ins.id), func(i int) ([]any, error) {
			return []any{ids[ins.id[i]], ins.customer[i], ins.status[i], ins.currency[i], ins.total[i], ins.refund[i],
				ins.version[i], ins.created[i], ins.updated[i], ins.refunded[i]}, nil
		}))
	if err != nil {
		return errors.Wrap(err, "copy placed orders")
	}
	l := &p.lines
	if len(l.id) == 0 {
		return nil
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"rm", "order_lines"},
		[]string{"order_id", "line_no", "sku", "qty", "unit_price_cents", "returned_qty"},
		pgx.CopyFromSlice(len(l.id), func(i int) ([]any, error) {
			return []any{ids[l.id[i]], l.no[i], l.sku[i], l.qty[i], l.price[i], l.returned[i]}, nil
		}))
	return errors.Wrap(err, "copy the lines of placed orders")
}
