package eventstore

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/orderengine/engine/domain"
)

// publishAtomic stores msgs as one JetStream atomic batch (a lone message
// as a plain publish), setting the batch headers on msgs, and returns the
// stream's answer, whose Error and Duplicate the caller reads. A commit
// that was never sent, or that no stream took, fails with
// domain.ErrUnavailable: nothing was stored. A commit sent whose answer
// was lost or late fails with domain.ErrOutcomeUnknown. what names the
// publish in errors.
func publishAtomic(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg, what string) (pubResponse, error) {
	last := msgs[len(msgs)-1]
	if len(msgs) > 1 {
		id := nuid.Next()
		for i, m := range msgs {
			m.Header.Set("Nats-Batch-Id", id)
			m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
			if i < len(msgs)-1 {
				if err := nc.PublishMsg(m); err != nil {
					return pubResponse{}, errors.Mark(errors.Wrapf(err, "%s: batch message", what), domain.ErrUnavailable)
				}
			}
		}
		last.Header.Set("Nats-Batch-Commit", "1")
	}
	resp, err := nc.RequestMsgWithContext(ctx, last)
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrNoResponders):
		// The commit was not sent, or no stream took it: nothing stored.
		return pubResponse{}, errors.Mark(errors.Wrap(err, what), domain.ErrUnavailable)
	default:
		// Sent, and the answer lost or late: stored or not, no one knows.
		return pubResponse{}, outcomeUnknown(requestError(ctx, err), what)
	}
	var pr pubResponse
	if err := json.Unmarshal(resp.Data, &pr); err != nil {
		return pubResponse{}, outcomeUnknown(err, "decode the acknowledgement of "+what)
	}
	return pr, nil
}
