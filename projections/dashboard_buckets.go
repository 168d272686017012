package projections

import (
	"cmp"
	"slices"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/queries"
)

// bucketKey is one row of rm.order_buckets; bucket is the bucket's start
// in Unix seconds, so equal instants are equal keys.
type bucketKey struct {
	granularity string
	bucket      int64
	metric      string
	currency    string
}

// bucketCounts is what a batch adds to rm.order_buckets.
type bucketCounts map[bucketKey]int64

// add counts delta in the minute and the hour (UTC) holding at.
func (b bucketCounts) add(at time.Time, metric, currency string, delta int64) {
	if delta == 0 {
		return
	}
	b[bucketKey{queries.BucketMinute, at.Truncate(time.Minute).Unix(), metric, currency}] += delta
	b[bucketKey{queries.BucketHour, at.Truncate(time.Hour).Unix(), metric, currency}] += delta
}

// orderMetric returns the metric e counts in and by how much; ok is false
// for an event that counts in none.
func orderMetric(e domain.OrderEvent) (metric string, delta int64, ok bool) {
	switch e := e.(type) {
	case domain.OrderPlaced:
		return queries.MetricOrdersPlaced, 1, true
	case domain.OrderConfirmed:
		return queries.MetricOrdersConfirmed, 1, true
	case domain.OrderRejected:
		return queries.MetricOrdersRejected, 1, true
	case domain.OrderPaid:
		return queries.MetricRevenueCents, e.AmountCents, e.AmountCents != 0
	case domain.OrderCancelled:
		return queries.MetricRevenueCents, -e.RefundDueCents, e.RefundDueCents > 0
	case domain.OrderRefunded:
		return queries.MetricRevenueCents, -e.AmountCents, e.AmountCents > 0
	case domain.LinesReturned:
		return queries.MetricRevenueCents, -e.RefundCents, e.RefundCents > 0
	}
	return "", 0, false
}

// bucketOrder is an order's place while its events are counted: the
// version counted up to and its currency.
type bucketOrder struct {
	version  uint64
	currency string
}

// readBucketOrders queues on b the SELECT of the order rows of the batch's
// events that count on the dashboard: their versions as they stood before
// the batch, and their currencies.
func readBucketOrders(b *pgx.Batch, evs []decoded) map[string]*bucketOrder {
	orders := make(map[string]*bucketOrder)
	var ids []string
	for _, d := range evs {
		if d.order == nil {
			continue
		}
		if _, _, ok := orderMetric(d.order); ok && orders[d.id] == nil {
			orders[d.id] = &bucketOrder{}
			ids = append(ids, d.id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	b.Queue(`SELECT order_id::text, version, currency FROM rm.orders WHERE order_id = ANY($1::text[]::uuid[])`,
		ids).Query(func(rows pgx.Rows) error {
		var (
			id       string
			version  int64
			currency string
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &version, &currency}, func() error {
			if o := orders[id]; o != nil {
				o.version, o.currency = uint64(version), currency
			}
			return nil
		})
		return errors.Wrap(err, "read order versions")
	})
	return orders
}

// foldBuckets counts the batch's order events in their buckets, starting
// from the order rows readBucketOrders read. Only the events above the
// order row's version as it stood before the batch count, the rule the
// order rows themselves follow, so replaying events the read model holds
// already (a checkpoint moved back) adds nothing; the runner drops the
// events at or below the checkpoint before this. The row also gives the
// currency of an order placed in an earlier batch.
func foldBuckets(orders map[string]*bucketOrder, evs []decoded) bucketCounts {
	if len(orders) == 0 {
		return nil
	}
	counts := make(bucketCounts)
	for _, d := range evs {
		o := orders[d.id]
		if d.order == nil || o == nil || d.env.Version <= o.version {
			continue
		}
		o.version = d.env.Version
		if p, ok := d.order.(domain.OrderPlaced); ok && o.currency == "" {
			o.currency = p.Currency
		}
		metric, delta, ok := orderMetric(d.order)
		if !ok {
			continue
		}
		currency := ""
		if metric == queries.MetricRevenueCents {
			currency = o.currency
		}
		at := d.order.OccurredAt()
		if at.IsZero() {
			at = d.env.OccurredAt
		}
		counts.add(at, metric, currency, delta)
	}
	return counts
}

const addBuckets = `INSERT INTO rm.order_buckets (granularity, bucket, metric, currency, value)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::bigint[])
ON CONFLICT (granularity, bucket, metric, currency) DO UPDATE SET value = rm.order_buckets.value + excluded.value`

// queueBuckets adds counts to b as one statement, in key order so that
// writers lock the rows in the same order.
func queueBuckets(b *pgx.Batch, counts bucketCounts) {
	if len(counts) == 0 {
		return
	}
	keys := make([]bucketKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b bucketKey) int {
		return cmp.Or(cmp.Compare(a.granularity, b.granularity), cmp.Compare(a.bucket, b.bucket),
			cmp.Compare(a.metric, b.metric), cmp.Compare(a.currency, b.currency))
	})
	n := len(keys)
	gran, metric, currency := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	bucket, value := make([]time.Time, 0, n), make([]int64, 0, n)
	for _, k := range keys {
		gran = append(gran, k.granularity)
		bucket = append(bucket, time.Unix(k.bucket, 0).UTC())
		metric = append(metric, k.metric)
		currency = append(currency, k.currency)
		value = append(value, counts[k])
	}
	b.Queue(addBuckets, gran, bucket, metric, currency, value)
}
