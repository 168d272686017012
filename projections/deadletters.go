package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
)

// DeadLetter is an event a projection could not apply; the projection went
// on without it.
type DeadLetter struct {
	ID         int64
	Projection string
	Shard      int // the event-store shard whose stream Seq counts in
	Seq        uint64
	Subject    string
	EventType  string // empty when the envelope could not be decoded
	Error      string
	Attempts   int
	// Envelope is the stored message; a payload that is not JSON is kept
	// as {"raw_base64": ...}.
	Envelope   json.RawMessage
	CreatedAt  time.Time
	ResolvedAt *time.Time
}

// applyOne applies ev inside tx under a savepoint, up to poisonAttempts
// times; when it still fails it files ev as a dead letter, in the same
// transaction as the checkpoint that moves past it. An error that is not
// the event's fault is returned and rolls the whole batch back.
func (r *Runner) applyOne(ctx context.Context, tx pgx.Tx, ev streamEvent) error {
	var last error
	for range poisonAttempts {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return errors.Wrap(err, "savepoint")
		}
		last = applyEvents(ctx, sp, []streamEvent{ev}, nil)
		if last == nil {
			return errors.Wrap(sp.Commit(ctx), "release savepoint")
		}
		if err := sp.Rollback(ctx); err != nil {
			return errors.Wrap(err, "rollback to savepoint")
		}
		if !isPoison(last) || ctx.Err() != nil {
			return last
		}
	}
	r.log.Error("event sent to the dead letters", "projection", r.name, "shard", ev.Shard, "seq", ev.Seq, "subject", ev.Subject, "err", last)
	typ := ""
	if env, err := eventstore.DecodeEnvelope(ev.Data); err == nil {
		typ = env.Type
	}
	_, err := tx.Exec(ctx, `INSERT INTO rm.dead_letters (projection, shard, seq, subject, event_type, error, attempts, envelope)
VALUES ($1, $8, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT (projection, shard, seq) DO NOTHING`,
		r.name, int64(ev.Seq), storableText(ev.Subject), storableText(typ), storableText(last.Error()), poisonAttempts,
		string(storableJSON(ev.Data)), ev.Shard)
	return errors.Wrap(err, "file dead letter")
}

// storableJSON returns data if jsonb accepts it, and otherwise wraps its
// bytes so that even garbage is kept for the operator: a dead letter that
// cannot be filed would stop the projection for good.
func storableJSON(data []byte) []byte {
	// jsonb refuses invalid UTF-8 and the NUL character, which JSON allows.
	if json.Valid(data) && utf8.Valid(data) && !bytes.Contains(data, []byte(`\u0000`)) {
		return data
	}
	b, _ := json.Marshal(map[string][]byte{"raw_base64": data})
	return b
}

// storableText makes s acceptable to a Postgres text column, which refuses
// NUL and invalid UTF-8.
func storableText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// DeadLetters returns the projection's dead letters, resolved ones
// included, oldest first.
func (r *Runner) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	rows, err := r.pool.Query(ctx, `SELECT id, projection, shard, seq, subject, event_type, error, attempts, envelope,
	created_at, resolved_at FROM rm.dead_letters WHERE projection = $1 ORDER BY id`, r.name)
	if err != nil {
		return nil, errors.Wrap(err, "read dead letters")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadLetter, error) {
		var (
			d   DeadLetter
			seq int64
			env []byte
		)
		err := row.Scan(&d.ID, &d.Projection, &d.Shard, &seq, &d.Subject, &d.EventType, &d.Error, &d.Attempts, &env,
			&d.CreatedAt, &d.ResolvedAt)
		d.Seq, d.Envelope = uint64(seq), env
		return d, err
	})
	return out, errors.Wrap(err, "read dead letters")
}

// Retry applies dead letter id again and marks it resolved. It works for an
// event whose row has not moved past it (the event's version is above the
// row's), since applying it later would undo newer events; otherwise, and
// when the event still cannot be applied, it returns an error and records
// the attempt. An unknown id is domain.ErrNotFound; retrying a resolved one
// does nothing.
func (r *Runner) Retry(ctx context.Context, id int64) error {
	var failure error
	err := r.retryTx(ctx, id, &failure)
	if err == nil && failure != nil {
		// The attempt is recorded in its own transaction: the one that
		// tried was rolled back.
		_, err = r.pool.Exec(ctx, `UPDATE rm.dead_letters SET attempts = attempts + 1, error = $2 WHERE id = $1`,
			id, failure.Error())
		if err == nil {
			return errors.Wrapf(failure, "retry dead letter %d", id)
		}
	}
	return errors.Wrapf(err, "retry dead letter %d", id)
}

// retryTx does Retry's work; a failure of the event itself goes to
// *failure, with nothing committed.
func (r *Runner) retryTx(ctx context.Context, id int64, failure *error) error {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return errors.Wrap(err, "begin")
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var (
		shard    int
		seq      int64
		subject  string
		env      []byte
		resolved *time.Time
	)
	err = tx.QueryRow(ctx, `SELECT shard FROM rm.dead_letters WHERE id = $1 AND projection = $2`, id, r.name).Scan(&shard)
	if errors.Is(err, pgx.ErrNoRows) {
		return errors.Wrapf(domain.ErrNotFound, "no dead letter %d", id)
	}
	if err != nil {
		return errors.Wrap(err, "read dead letter")
	}
	// Taking the checkpoint lock of the letter's shard keeps Retry from
	// interleaving with a batch of that shard; it is taken before the
	// letter's row, in the order a batch that files a letter takes them.
	if _, err := lockCheckpoint(ctx, tx, r.name, shard); err != nil {
		return err
	}
	err = tx.QueryRow(ctx, `SELECT seq, subject, envelope, resolved_at FROM rm.dead_letters
WHERE id = $1 AND projection = $2 FOR UPDATE`, id, r.name).Scan(&seq, &subject, &env, &resolved)
	if err != nil {
		return errors.Wrap(err, "read dead letter")
	}
	if resolved != nil {
		return nil
	}
	ev := streamEvent{Shard: shard, Seq: uint64(seq), Subject: subject, Data: env}
	if err := checkRetryable(ctx, tx, ev); err != nil {
		*failure = err
		return nil
	}
	if err := applyEvents(ctx, tx, []streamEvent{ev}, nil); err != nil {
		if !isPoison(err) {
			return err
		}
		*failure = err
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE rm.dead_letters SET resolved_at = now(), attempts = attempts + 1 WHERE id = $1`, id); err != nil {
		return errors.Wrap(err, "resolve dead letter")
	}
	return errors.Wrap(tx.Commit(ctx), "commit")
}

// checkRetryable refuses an event whose row is already at or past its
// version: applying it would be skipped as a replay.
func checkRetryable(ctx context.Context, tx pgx.Tx, ev streamEvent) error {
	d, err := decodeEvent(ev)
	if err != nil {
		return err
	}
	q := `SELECT version FROM rm.inventory WHERE sku = $1`
	if strings.HasPrefix(ev.Subject, orderPrefix) {
		q = `SELECT version FROM rm.orders WHERE order_id = $1::text::uuid`
	}
	var version int64
	err = tx.QueryRow(ctx, q, d.id).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return errors.Wrap(err, "read row version")
	}
	if uint64(version) >= d.env.Version {
		return errors.WithHint(
			errors.Newf("%s is at version %d, past the event's version %d", ev.Subject, version, d.env.Version),
			"rebuild the projection to include this event")
	}
	return nil
}
