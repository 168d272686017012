package eventstore

import (
	"sync/atomic"
	"time"
)

// expiryLate remembers how late after its due the last expiry of this
// process started: the worker hands a due order to a handler as soon as
// one of its 256 is free, so a start that comes late means every handler
// is busy and the worker runs behind.
type expiryLate struct {
	by atomic.Int64 // nanoseconds after the due
	at atomic.Int64 // when it started, Unix nanoseconds
}

// expiryLateFor is how long a start counts: an idle worker starts nothing,
// and must not look late on the strength of its last start.
const expiryLateFor = 2 * time.Second

func (l *expiryLate) started(due time.Time) {
	now := time.Now()
	l.by.Store(int64(max(now.Sub(due), 0)))
	l.at.Store(now.UnixNano())
}

func (l *expiryLate) get() time.Duration {
	if time.Since(time.Unix(0, l.at.Load())) > expiryLateFor {
		return 0
	}
	return time.Duration(l.by.Load())
}

// ExpiryLate returns how long after its due the last expiry handled by
// this process started, if one started in the last two seconds (else 0):
// how far its expiry worker runs behind the orders' dues.
func (s *Store) ExpiryLate() time.Duration { return s.late.get() }
