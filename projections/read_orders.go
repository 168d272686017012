package projections

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/queries"
)

// OrderReads serves the order queries from rm.orders and rm.order_lines.
type OrderReads struct{ Pool *pgxpool.Pool }

var _ queries.OrderReader = OrderReads{}

// orderSelect reads orders with their lines in one round trip: the lines
// come as a JSON array in line_no order, [] for an order without lines.
const orderSelect = `SELECT o.order_id::text, o.customer_id, o.status, o.currency, o.total_cents,
       o.refund_due_cents, o.refunded_cents, o.version, o.created_at, o.updated_at,
       COALESCE((SELECT json_agg(json_build_object('sku', l.sku, 'qty', l.qty,
                    'unit_price_cents', l.unit_price_cents, 'returned_qty', l.returned_qty) ORDER BY l.line_no)
                 FROM rm.order_lines l WHERE l.order_id = o.order_id), '[]'::json)
FROM rm.orders o`

// Order returns the order id with its lines. It returns an error matching
// domain.ErrNotFound when there is no such order, and one matching
// domain.ErrUnavailable when the database cannot be reached.
func (r OrderReads) Order(ctx context.Context, id string) (queries.OrderView, error) {
	rows, err := r.Pool.Query(ctx, orderSelect+` WHERE o.order_id = $1::uuid`, id)
	if err != nil {
		return queries.OrderView{}, readErr(err, "read order %s", id)
	}
	orders, err := pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return queries.OrderView{}, readErr(err, "read order %s", id)
	}
	if len(orders) == 0 {
		return queries.OrderView{}, errors.Wrapf(domain.ErrNotFound, "order %s", id)
	}
	return orders[0], nil
}

// Orders returns up to f.Limit orders matching f, newest first. The SQL is
// built per combination of filters, rather than with "$1 IS NULL OR ...",
// so that every plan, generic ones included, can use the matching index
// (orders_newest, orders_by_status or orders_by_customer) and stop after
// f.Limit rows. It returns an error matching domain.ErrUnavailable when the
// database cannot be reached.
func (r OrderReads) Orders(ctx context.Context, f queries.OrderFilter) ([]queries.OrderView, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Status != "" {
		where = append(where, "o.status = "+arg(string(f.Status)))
	}
	if f.CustomerID != "" {
		where = append(where, "o.customer_id = "+arg(f.CustomerID))
	}
	if f.After != nil {
		where = append(where, "(o.created_at, o.order_id) < ("+arg(f.After.CreatedAt)+"::timestamptz, "+arg(f.After.OrderID)+"::uuid)")
	}
	var q strings.Builder
	q.WriteString(orderSelect)
	if len(where) > 0 {
		q.WriteString(" WHERE ")
		q.WriteString(strings.Join(where, " AND "))
	}
	q.WriteString(" ORDER BY o.created_at DESC, o.order_id DESC LIMIT " + arg(max(f.Limit, 1)))
	rows, err := r.Pool.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, readErr(err, "list orders")
	}
	orders, err := pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return nil, readErr(err, "list orders")
	}
	return orders, nil
}

func scanOrder(row pgx.CollectableRow) (queries.OrderView, error) {
	var o queries.OrderView
	var version int64
	err := row.Scan(&o.OrderID, &o.CustomerID, &o.Status, &o.Currency, &o.TotalCents,
		&o.RefundDueCents, &o.RefundedCents, &version, &o.CreatedAt, &o.UpdatedAt, &o.Lines)
	if err != nil {
		return o, err
	}
	if version < 0 {
		return o, errors.AssertionFailedf("order %s has negative version %d", o.OrderID, version)
	}
	o.Version = uint64(version)
	o.CreatedAt, o.UpdatedAt = utc(o.CreatedAt), utc(o.UpdatedAt)
	if o.Lines == nil {
		o.Lines = []queries.OrderLineView{}
	}
	return o, nil
}

// utc drops the session's time zone so JSON shows times as the write side
// does.
func utc(t time.Time) time.Time { return t.UTC() }
