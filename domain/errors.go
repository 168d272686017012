package domain

import (
	"sort"
	"strings"

	"github.com/cockroachdb/errors"
)

// The error kinds the rest of the engine maps to HTTP statuses in one
// table. Deciders wrap them with context, so compare with errors.Is, never
// with ==.
var (
	// ErrNotFound means the aggregate a command addresses does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidTransition means the aggregate's current state does not
	// allow the command (for example paying a pending order).
	ErrInvalidTransition = errors.New("invalid transition")
	// ErrConflict means an optimistic-concurrency conflict, or a create
	// command aimed at an aggregate that already exists.
	ErrConflict = errors.New("conflict")
	// ErrValidation is matched by every *ValidationError, so callers that
	// only need the kind do not have to unpack the fields.
	ErrValidation = errors.New("validation failed")
	// ErrPreconditionFailed means the caller's expected version (If-Match)
	// is not the aggregate's: it decided on a state that has changed.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrIdempotencyKeyReused means an idempotency key that answered one
	// request was sent with a different one; nothing was done.
	ErrIdempotencyKeyReused = errors.New("this Idempotency-Key was used for a different request")
	// ErrUnavailable means a dependency (the event store, the read-model
	// database) is unreachable or did not answer in time. Nothing was
	// half-written: an append is atomic, a read writes nothing.
	ErrUnavailable = errors.New("unavailable")
	// ErrOutcomeUnknown means a command was sent to the event store but its
	// answer never came: it was stored entirely or not at all, and which is
	// not known. Errors of this kind match ErrUnavailable too. A retry with
	// the command's idempotency key is safe: it applies the command at most
	// once and answers with the first outcome.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrBacklogFull means the reservation processors are too far behind
	// to take more work: a new order was refused before anything was
	// written, and may be sent again once they catch up.
	ErrBacklogFull = errors.New("the reservation backlog is full")
)

// ValidationError lists each invalid field by its JSON path
// ("lines[0].qty") with a user-facing message. Deciders return one
// ValidationError naming every bad field at once, so a client can fix its
// request in a single round trip.
type ValidationError struct {
	Fields map[string]string
}

// Error renders the fields sorted by path, so the text is deterministic in
// logs and tests.
func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("validation failed: ")
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(e.Fields[k])
	}
	return b.String()
}

// Is reports true for ErrValidation, so errors.Is(err, ErrValidation)
// holds for every validation failure whatever its fields.
func (e *ValidationError) Is(target error) bool {
	return target == ErrValidation
}

// fieldErrors collects field problems while a command is checked. The
// first message recorded for a field wins: it is the most basic one (a
// malformed SKU is reported rather than "duplicate sku").
type fieldErrors struct {
	m map[string]string
}

func (f *fieldErrors) add(field, msg string) {
	if f.m == nil {
		f.m = make(map[string]string)
	}
	if _, ok := f.m[field]; !ok {
		f.m[field] = msg
	}
}

func (f *fieldErrors) has(field string) bool {
	_, ok := f.m[field]
	return ok
}

// err returns nil when nothing was recorded; it returns the error
// interface, never a typed nil pointer.
func (f *fieldErrors) err() error {
	if len(f.m) == 0 {
		return nil
	}
	return &ValidationError{Fields: f.m}
}

// invalidTransition wraps ErrInvalidTransition with what was attempted and
// a hint telling the user which states allow it.
func invalidTransition(hint, format string, args ...any) error {
	return errors.WithHint(errors.WrapWithDepthf(1, ErrInvalidTransition, format, args...), hint)
}
