package projections

import (
	"context"
	"strconv"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/queries"
)

// InventoryReads serves the inventory queries from rm.inventory.
type InventoryReads struct{ Pool *pgxpool.Pool }

var _ queries.InventoryReader = InventoryReads{}

const inventorySelect = `SELECT sku, on_hand, reserved, version FROM rm.inventory`

// Item returns the SKU's stock. It returns an error matching
// domain.ErrNotFound when there is no such SKU, and one matching
// domain.ErrUnavailable when the database cannot be reached.
func (r InventoryReads) Item(ctx context.Context, sku string) (queries.InventoryView, error) {
	rows, err := r.Pool.Query(ctx, inventorySelect+` WHERE sku = $1`, sku)
	if err != nil {
		return queries.InventoryView{}, readErr(err, "read inventory %s", sku)
	}
	items, err := pgx.CollectRows(rows, scanItem)
	if err != nil {
		return queries.InventoryView{}, readErr(err, "read inventory %s", sku)
	}
	if len(items) == 0 {
		return queries.InventoryView{}, errors.Wrapf(domain.ErrNotFound, "sku %s", sku)
	}
	return items[0], nil
}

// Items returns up to f.Limit SKUs matching f in SKU order, walking the
// primary key (or inventory_by_available for a tight available_below). It
// returns an error matching domain.ErrUnavailable when the database
// cannot be reached.
func (r InventoryReads) Items(ctx context.Context, f queries.InventoryFilter) ([]queries.InventoryView, error) {
	q := inventorySelect + " WHERE true"
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.AvailableBelow != nil {
		q += " AND on_hand - reserved < " + arg(*f.AvailableBelow)
	}
	if f.After != "" {
		q += " AND sku > " + arg(f.After)
	}
	q += " ORDER BY sku LIMIT " + arg(max(f.Limit, 1))
	rows, err := r.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, readErr(err, "list inventory")
	}
	items, err := pgx.CollectRows(rows, scanItem)
	if err != nil {
		return nil, readErr(err, "list inventory")
	}
	return items, nil
}

func scanItem(row pgx.CollectableRow) (queries.InventoryView, error) {
	var v queries.InventoryView
	var version int64
	if err := row.Scan(&v.SKU, &v.OnHand, &v.Reserved, &version); err != nil {
		return v, err
	}
	if version < 0 {
		return v, errors.AssertionFailedf("sku %s has negative version %d", v.SKU, version)
	}
	v.Version = uint64(version)
	v.Available = v.OnHand - v.Reserved
	return v, nil
}
