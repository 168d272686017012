package eventstore

import (
	"context"
	"strings"

	"github.com/cockroachdb/errors"
)

// IsEventSubject reports whether subject holds events (orders.*,
// inventory.*) rather than the other messages the stream keeps beside them.
func IsEventSubject(subject string) bool {
	return strings.HasPrefix(subject, OrderSubjects+".") || strings.HasPrefix(subject, InventorySubjects+".")
}

// Export calls fn with every event whose stream sequence is in [from, to]
// (to 0: up to the end), in store order, reading page by page with direct
// gets: memory stays constant whatever the size of the store. Other
// messages of the stream (idempotency records, reservation requests,
// timers) are skipped.
func (s *Store) Export(ctx context.Context, from, to uint64, fn func(seq uint64, subject string, e Envelope) error) error {
	return s.readSubject(ctx, ">", from, to, func(m RawMsg) error {
		if !IsEventSubject(m.Subject) {
			return nil
		}
		e, err := DecodeEnvelope(m.Data)
		if err != nil {
			return errors.Wrapf(err, "%s seq %d", m.Subject, m.Seq)
		}
		return fn(m.Seq, m.Subject, e)
	})
}
