package eventstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// IdempotencyTTL is how long a command's idempotency record is kept for replay.
const IdempotencyTTL = 24 * time.Hour

// IdemRecord is what the store keeps of a command sent with an
// idempotency key, stored right after its events: enough to tell a retry
// from another request under the same key and to give the retry the first
// outcome, which is the aggregate as of the command's last event (Replay).
// The answer itself is rendered by the caller, from that state, both times.
// Records stored before this shape also held that answer; it is ignored.
type IdemRecord struct {
	Fingerprint string    `json:"fingerprint"` // identifies the request: method, path and body
	CommandID   string    `json:"command_id"`
	StoredAt    time.Time `json:"stored_at"`
	// EventSeq is the stream sequence of the command's last event, in the
	// stream of shard Shard: its consistency token.
	EventSeq uint64 `json:"-"`
	Shard    int    `json:"-"`
}

// idemMsg builds the message that stores rec under key. It expects the key's
// subject to be empty, so of two commands racing with one key (in this
// process or another) exactly one batch is stored; and it expires by itself
// after IdempotencyTTL through the per-message TTL.
func idemMsg(key, commandID string, rec IdemRecord) (*nats.Msg, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, errors.Wrap(err, "encode idempotency record")
	}
	m := nats.NewMsg(IdemSubjects + "." + key)
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, commandID+":idem")
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	m.Header.Set(jetstream.MsgTTLHeader, IdempotencyTTL.String())
	return m, nil
}

// LookupIdempotency returns the record stored under key, if any, on any
// shard. key must be a subject token (the HTTP layer passes a hex digest).
// A record is stored on the shard of the aggregate its command addressed.
func (s *Store) LookupIdempotency(ctx context.Context, key string) (IdemRecord, bool, error) {
	for _, sh := range s.shards {
		if rec, ok, err := s.lookupIdem(ctx, sh, key); err != nil || ok {
			return rec, ok, err
		}
	}
	return IdemRecord{}, false, nil
}

// lookupIdem returns the record stored under key on shard sh, if any.
func (s *Store) lookupIdem(ctx context.Context, sh *shard, key string) (IdemRecord, bool, error) {
	m, ok, err := s.lastMsg(ctx, sh, IdemSubjects+"."+key)
	if err != nil || !ok {
		return IdemRecord{}, false, err
	}
	var rec IdemRecord
	if err := json.Unmarshal(m.Data, &rec); err != nil {
		return IdemRecord{}, false, errors.Wrap(err, "decode idempotency record")
	}
	// The record is stored right after the command's events, in one batch.
	rec.EventSeq, rec.Shard = m.Seq-1, sh.index
	if time.Since(rec.StoredAt) > IdempotencyTTL {
		return IdemRecord{}, false, nil // expired, the server has not removed it yet
	}
	return rec, true, nil
}
