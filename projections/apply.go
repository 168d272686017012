package projections

import (
	"context"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// streamEvent is one message of the events stream as the projection sees it:
// its place in the store (shard and sequence in that shard's stream), its
// logical subject and the raw envelope. A batch holds events of one shard.
type streamEvent struct {
	Shard   int
	Seq     uint64
	Subject string
	Data    []byte
	// Header is the stored message's headers, which carry the trace
	// context of the append that stored the event.
	Header nats.Header
}

const (
	orderPrefix = eventstore.OrderSubjects + "."
	skuPrefix   = eventstore.InventorySubjects + "."
)

// errPoison marks an error that lies in the event itself (it cannot be
// decoded, or its row breaks a constraint): trying it again cannot help, so
// after a few tries it goes to the dead letters. Any other error (Postgres
// or NATS unreachable, a cancelled context) stops the batch instead, and the
// projection resumes from its checkpoint.
var errPoison = errors.New("event cannot be applied")

// isPoison reports whether err is the event's fault rather than the
// infrastructure's: a decoding error, or a Postgres data exception (class
// 22) or integrity constraint violation (class 23).
func isPoison(err error) bool {
	if errors.Is(err, errPoison) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")
	}
	return false
}

// decoded is a streamEvent with its envelope and domain event parsed;
// exactly one of order and sku is set.
type decoded struct {
	streamEvent
	env   eventstore.Envelope
	id    string // order id or SKU, from the subject
	order domain.OrderEvent
	sku   domain.SKUEvent
}

// decodeEvent parses ev. Every failure is poison: the bytes will not change.
func decodeEvent(ev streamEvent) (decoded, error) {
	d := decoded{streamEvent: ev}
	env, err := eventstore.DecodeEnvelope(ev.Data)
	if err != nil {
		return d, errors.Mark(errors.Wrapf(err, "seq %d", ev.Seq), errPoison)
	}
	d.env = env
	switch {
	case strings.HasPrefix(ev.Subject, orderPrefix):
		d.id = strings.TrimPrefix(ev.Subject, orderPrefix)
		d.order, err = eventstore.DecodeOrderEvent(env.Type, env.SchemaVersion, env.Data)
	case strings.HasPrefix(ev.Subject, skuPrefix):
		d.id = strings.TrimPrefix(ev.Subject, skuPrefix)
		d.sku, err = eventstore.DecodeSKUEvent(env.Type, env.SchemaVersion, env.Data)
	default:
		err = errors.Newf("subject %s is not an event subject", ev.Subject)
	}
	if err == nil && env.AggregateID != d.id {
		err = errors.Newf("envelope of aggregate %q on subject %s", env.AggregateID, ev.Subject)
	}
	if err != nil {
		return d, errors.Mark(errors.Wrapf(err, "seq %d", ev.Seq), errPoison)
	}
	return d, nil
}

// decodeAll decodes events on every core: JSON decoding is most of the
// projection's own CPU time, and events decode independently. The error is
// that of the first bad event in stream order, so it does not depend on
// scheduling.
func decodeAll(events []streamEvent) ([]decoded, error) {
	evs := make([]decoded, len(events))
	errs := make([]error, len(events))
	workers := min(runtime.GOMAXPROCS(0), len(events)/minDecodeChunk)
	if workers < 2 {
		for i, ev := range events {
			evs[i], errs[i] = decodeEvent(ev)
		}
	} else {
		var wg sync.WaitGroup
		chunk := (len(events) + workers - 1) / workers
		for lo := 0; lo < len(events); lo += chunk {
			hi := min(lo+chunk, len(events))
			wg.Go(func() {
				for i := lo; i < hi; i++ {
					evs[i], errs[i] = decodeEvent(events[i])
				}
			})
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// minDecodeChunk is the fewest events worth handing to a goroutine.
const minDecodeChunk = 64

// orderChange is what a batch does to one order row: the order folded over
// the batch's events from the zero state, so Status is "" when no event of
// the batch set it.
type orderChange struct {
	id        string
	placed    bool // OrderPlaced is in the batch: the row is inserted
	cancelled bool // refund_due_cents is set
	refunded  bool // refunded_cents is set (a refund or a return)
	returned  bool // some line's returned_qty is set
	state     domain.Order
	version   uint64
}

// skuChange is a SKU's row after the batch.
type skuChange struct {
	state   domain.SKU
	events  []domain.SKUEvent
	version uint64
}

// applyEvents applies events, in stream order, to the read models through
// tx: one round trip reads the SKU rows it touches and the order rows whose
// events count on the dashboard, then every write goes in one pgx.Batch, to
// which more may add statements (the checkpoint) so that they share the
// round trip. Events at or below a row's version change nothing,
// and add nothing to the dashboard's rm.order_buckets.
// It returns a poison error (see isPoison) when an event is at fault.
func applyEvents(ctx context.Context, tx pgx.Tx, events []streamEvent, more func(*pgx.Batch)) error {
	evs, err := decodeAll(events)
	if err != nil {
		return err
	}
	return applyDecoded(ctx, tx, evs, more, false)
}

// applyDecoded is applyEvents for events decoded already. With bulk, the
// orders placed in the batch and their lines are written with COPY instead
// of an upsert (placedRows.copy).
func applyDecoded(ctx context.Context, tx pgx.Tx, evs []decoded, more func(*pgx.Batch), bulk bool) error {
	orders, orderIDs := foldOrders(evs)
	// The rows the folds start from come in one round trip, before any
	// write: the order rows' versions tell which events are new to the
	// dashboard's counters.
	reads := &pgx.Batch{}
	skuRows := readSKUs(reads, evs)
	bucketOrders := readBucketOrders(reads, evs)
	if reads.Len() > 0 {
		if err := tx.SendBatch(ctx, reads).Close(); err != nil {
			return errors.Wrap(err, "read rows")
		}
	}
	b := &pgx.Batch{}
	placed := queueOrders(b, orders, orderIDs, bulk)
	if err := placed.copy(ctx, tx); err != nil {
		return err
	}
	queueSKUs(b, foldSKUs(skuRows, evs))
	queueBuckets(b, foldBuckets(bucketOrders, evs))
	if more != nil {
		more(b)
	}
	if b.Len() == 0 {
		return nil
	}
	return errors.Wrap(tx.SendBatch(ctx, b).Close(), "write read models")
}

// foldOrders folds each order's events of the batch in memory, so that each
// row is written once; ids keeps the orders in first-seen order so the
// writes are deterministic.
func foldOrders(evs []decoded) (map[string]*orderChange, []string) {
	changes := make(map[string]*orderChange)
	var ids []string
	for _, d := range evs {
		if d.order == nil {
			continue
		}
		c := changes[d.id]
		if c == nil {
			c = &orderChange{id: d.id}
			changes[d.id] = c
			ids = append(ids, d.id)
		}
		// Within a batch an aggregate's versions only grow; this guards a
		// replayed range that overlaps itself.
		if d.env.Version <= c.version {
			continue
		}
		switch d.order.(type) {
		case domain.OrderPlaced:
			c.placed = true
		case domain.OrderCancelled:
			c.cancelled = true
		case domain.OrderRefunded:
			c.refunded = true
		case domain.LinesReturned:
			c.refunded, c.returned = true, true
		}
		c.state = domain.EvolveOrder(c.state, d.order)
		c.version = d.env.Version
	}
	return changes, ids
}

// skuRows are the SKUs of a batch as their rows stand, in first-seen
// order.
type skuRows struct {
	changes map[string]*skuChange
	order   []*skuChange
}

// readSKUs queues on b the SELECT of the batch's SKU rows; a SKU without a
// row starts at 0/0 (a SKU's first events may be refusals).
func readSKUs(b *pgx.Batch, evs []decoded) *skuRows {
	r := &skuRows{changes: make(map[string]*skuChange)}
	for _, d := range evs {
		if d.sku == nil {
			continue
		}
		c := r.changes[d.id]
		if c == nil {
			c = &skuChange{state: domain.SKU{SKU: d.id}}
			r.changes[d.id] = c
			r.order = append(r.order, c)
		}
	}
	if len(r.order) == 0 {
		return r
	}
	names := make([]string, len(r.order))
	for i, c := range r.order {
		names[i] = c.state.SKU
	}
	b.Queue(`SELECT sku, on_hand, reserved, version FROM rm.inventory WHERE sku = ANY($1)`, names).Query(func(rows pgx.Rows) error {
		var (
			sku              string
			onHand, reserved int64
			version          int64
		)
		_, err := pgx.ForEachRow(rows, []any{&sku, &onHand, &reserved, &version}, func() error {
			if c := r.changes[sku]; c != nil {
				c.state.OnHand, c.state.Reserved, c.version = onHand, reserved, uint64(version)
			}
			return nil
		})
		return errors.Wrap(err, "read inventory rows")
	})
	return r
}

// foldSKUs folds, from each SKU's row as readSKUs read it, the events above
// the row's version with the domain's own EvolveSKUAll, so stock is counted
// exactly as the write side counts it. It returns the SKUs that changed.
func foldSKUs(r *skuRows, evs []decoded) []*skuChange {
	for _, d := range evs {
		if d.sku == nil {
			continue
		}
		c := r.changes[d.id]
		if d.env.Version <= c.version {
			continue
		}
		c.events = append(c.events, d.sku)
		c.version = d.env.Version
	}
	out := r.order[:0]
	for _, c := range r.order {
		if len(c.events) == 0 {
			continue
		}
		c.state = domain.EvolveSKUAll(c.state, c.events)
		// The row keeps the stream's version, not the count of events
		// folded here: they differ when an event went to the dead letters.
		c.state.Version = c.version
		out = append(out, c)
	}
	return out
}

const (
	upsertOrders = `INSERT INTO rm.orders
	(order_id, customer_id, status, currency, total_cents, refund_due_cents, version, created_at, updated_at, refunded_cents)
SELECT * FROM unnest($1::text[]::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
	$8::timestamptz[], $9::timestamptz[], $10::bigint[])
ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, refund_due_cents = excluded.refund_due_cents,
	version = excluded.version, updated_at = excluded.updated_at, refunded_cents = excluded.refunded_cents
WHERE rm.orders.version < excluded.version`

	insertLines = `INSERT INTO rm.order_lines (order_id, line_no, sku, qty, unit_price_cents, returned_qty)
SELECT * FROM unnest($1::text[]::uuid[], $2::int[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
ON CONFLICT (order_id, line_no) DO NOTHING`

	// updateOrders leaves status and refund alone where the batch did not
	// set them (NULL), e.g. a batch holding only a LineReserved.
	updateOrders = `UPDATE rm.orders o SET status = COALESCE(v.status, o.status),
	refund_due_cents = COALESCE(v.refund_due_cents, o.refund_due_cents),
	refunded_cents = COALESCE(v.refunded_cents, o.refunded_cents), version = v.version, updated_at = v.updated_at
FROM unnest($1::text[]::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::bigint[])
	AS v(order_id, status, refund_due_cents, version, updated_at, refunded_cents)
WHERE o.order_id = v.order_id AND o.version < v.version`

	// updateReturned writes the returned quantities of the lines a batch
	// returned. It runs before the order rows move, and only where the
	// order row is behind the batch, the rule every order write follows,
	// so a replayed batch cannot put back an older quantity. The events
	// carry each line's total, so nothing is added up here.
	updateReturned = `UPDATE rm.order_lines l SET returned_qty = v.returned_qty
FROM unnest($1::text[]::uuid[], $2::text[], $3::bigint[], $4::bigint[]) AS v(order_id, sku, returned_qty, version)
WHERE l.order_id = v.order_id AND l.sku = v.sku
	AND EXISTS (SELECT 1 FROM rm.orders o WHERE o.order_id = v.order_id AND o.version < v.version)`

	upsertInventory = `INSERT INTO rm.inventory (sku, on_hand, reserved, version, updated_at)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[])
ON CONFLICT (sku) DO UPDATE SET on_hand = excluded.on_hand, reserved = excluded.reserved,
	version = excluded.version, updated_at = excluded.updated_at
WHERE rm.inventory.version < excluded.version`
)

// placedRows are the rows of the orders placed in a batch, and their lines.
type placedRows struct {
	ins struct {
		id, customer, status, currency []string
		total, refund, version         []int64
		created, updated               []time.Time
		refunded                       []int64
	}
	lines struct {
		id, sku              []string
		no                   []int32
		qty, price, returned []int64
	}
}

// queueOrders adds the order writes to b: inserts for orders placed in the
// batch (with their lines), updates for the others. Both only move a row
// forward (version < the new version), so a replay changes nothing. With
// bulk the inserts are not queued but returned, for placedRows.copy.
func queueOrders(b *pgx.Batch, changes map[string]*orderChange, ids []string, bulk bool) *placedRows {
	p := &placedRows{}
	ins, lines := &p.ins, &p.lines
	var upd struct {
		id       []string
		status   []*string
		refund   []*int64
		version  []int64
		updated  []time.Time
		refunded []*int64
	}
	var ret struct {
		id, sku      []string
		qty, version []int64
	}
	for _, id := range ids {
		c := changes[id]
		if c.version == 0 {
			continue
		}
		s := c.state
		if c.returned {
			// In SKU order, so that writers lock rows in one order.
			for _, sku := range slices.Sorted(maps.Keys(s.Returned)) {
				ret.id = append(ret.id, id)
				ret.sku = append(ret.sku, sku)
				ret.qty = append(ret.qty, s.Returned[sku])
				ret.version = append(ret.version, int64(c.version))
			}
		}
		if c.placed {
			ins.id = append(ins.id, id)
			ins.customer = append(ins.customer, s.CustomerID)
			ins.status = append(ins.status, string(s.Status))
			ins.currency = append(ins.currency, s.Currency)
			ins.total = append(ins.total, s.TotalCents)
			ins.refund = append(ins.refund, s.RefundDueCents)
			ins.version = append(ins.version, int64(c.version))
			ins.created = append(ins.created, s.CreatedAt)
			ins.updated = append(ins.updated, s.UpdatedAt)
			ins.refunded = append(ins.refunded, s.RefundedCents)
			for i, l := range s.Lines {
				lines.id = append(lines.id, id)
				lines.no = append(lines.no, int32(i))
				lines.sku = append(lines.sku, l.SKU)
				lines.qty = append(lines.qty, l.Qty)
				lines.price = append(lines.price, l.UnitPriceCents)
				lines.returned = append(lines.returned, s.ReturnedQty(l.SKU))
			}
			continue
		}
		var status *string
		if s.Status != "" {
			st := string(s.Status)
			status = &st
		}
		var refund *int64
		if c.cancelled {
			r := s.RefundDueCents
			refund = &r
		}
		upd.id = append(upd.id, id)
		upd.status = append(upd.status, status)
		upd.refund = append(upd.refund, refund)
		upd.version = append(upd.version, int64(c.version))
		upd.updated = append(upd.updated, s.UpdatedAt)
		var refunded *int64
		if c.refunded {
			r := s.RefundedCents
			refunded = &r
		}
		upd.refunded = append(upd.refunded, refunded)
	}
	if len(ret.id) > 0 {
		b.Queue(updateReturned, ret.id, ret.sku, ret.qty, ret.version)
	}
	if len(upd.id) > 0 {
		b.Queue(updateOrders, upd.id, upd.status, upd.refund, upd.version, upd.updated, upd.refunded)
	}
	if bulk {
		return p
	}
	if len(ins.id) > 0 {
		b.Queue(upsertOrders, ins.id, ins.customer, ins.status, ins.currency, ins.total, ins.refund, ins.version,
			ins.created, ins.updated, ins.refunded)
	}
	if len(lines.id) > 0 {
		b.Queue(insertLines, lines.id, lines.no, lines.sku, lines.qty, lines.price, lines.returned)
	}
	return nil
}

// queueSKUs adds the inventory upsert to b.
func queueSKUs(b *pgx.Batch, changes []*skuChange) {
	if len(changes) == 0 {
		return
	}
	n := len(changes)
	skus, updated := make([]string, 0, n), make([]time.Time, 0, n)
	onHand, reserved, version := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	for _, c := range changes {
		skus = append(skus, c.state.SKU)
		onHand = append(onHand, c.state.OnHand)
		reserved = append(reserved, c.state.Reserved)
		version = append(version, int64(c.state.Version))
		updated = append(updated, c.state.UpdatedAt)
	}
	b.Queue(upsertInventory, skus, onHand, reserved, version, updated)
}
