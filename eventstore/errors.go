package eventstore

import (
	"context"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderengine/engine/domain"
)

// outcomeUnknown marks err, a failure after a batch was sent, as both
// domain.ErrUnavailable and domain.ErrOutcomeUnknown: it was stored entirely
// or not at all, and the store cannot tell which.
func outcomeUnknown(err error, msg string) error {
	return errors.Mark(errors.Mark(errors.Wrap(err, msg), domain.ErrUnavailable), domain.ErrOutcomeUnknown)
}

// errNotConnected is returned at once while the connection to NATS is down.
var errNotConnected = errors.Mark(errors.New("not connected to NATS"), domain.ErrUnavailable)

// errAlreadyStored says a publish was a duplicate of one stored earlier (same
// Nats-Msg-Id): the command's events are already in the store.
var errAlreadyStored = errors.New("already stored")

// publishError turns a JetStream API error into the engine's error kinds.
func publishError(e *jetstream.APIError) error {
	switch e.ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return errors.Wrapf(domain.ErrConflict, "append: %s", e.Description)
	case 10201: // atomic publish batch contains duplicate message id
		return errors.Mark(errors.Newf("append: %s", e.Description), errAlreadyStored)
	case 10158: // duplicate message id is in process
		return errors.Wrapf(domain.ErrConflict, "append: %s", e.Description)
	}
	if e.Code == 503 || e.Code == 429 {
		return errors.Mark(errors.Newf("append: %s (%d)", e.Description, e.ErrorCode), domain.ErrUnavailable)
	}
	return errors.Newf("append refused by JetStream: %s (code %d)", e.Description, e.ErrorCode)
}

// unavailable marks connection-level failures as domain.ErrUnavailable.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrReconnectBufExceeded) {
		return errors.Mark(err, domain.ErrUnavailable)
	}
	return err
}
