package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
)

// Envelope is one stored event: the domain event's data plus everything an
// auditor needs to place it (aggregate, version, time, causation) and the
// SHA-256 link to the previous event of the same aggregate.
type Envelope struct {
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Version       uint64          `json:"version"`
	OccurredAt    time.Time       `json:"occurred_at"`
	CommandID     string          `json:"command_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	Data          json.RawMessage `json:"data"`
	PrevHash      string          `json:"prev_hash"`
	Hash          string          `json:"hash"`
}

// ComputeHash returns the hex SHA-256 over the previous hash and the
// envelope's canonical bytes. The canonical form is length-prefixed fields in
// a fixed order rather than JSON, so that no encoder detail (key order,
// escaping, number format) can change a hash after the fact.
func (e *Envelope) ComputeHash() string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(e.PrevHash)
	field(e.Type)
	field(strconv.Itoa(e.SchemaVersion))
	field(e.AggregateType)
	field(e.AggregateID)
	field(strconv.FormatUint(e.Version, 10))
	field(e.OccurredAt.UTC().Format(time.RFC3339Nano))
	field(e.CommandID)
	field(e.CausationID)
	field(e.CorrelationID)
	field(string(e.Data))
	return hex.EncodeToString(h.Sum(nil))
}

// Seal sets PrevHash and Hash, chaining the envelope after prev.
func (e *Envelope) Seal(prev string) {
	e.PrevHash = prev
	e.OccurredAt = e.OccurredAt.UTC()
	e.Hash = e.ComputeHash()
}

// DecodeEnvelope parses a stored message payload.
// It returns an error when the payload is not an envelope.
func DecodeEnvelope(b []byte) (Envelope, error) {
	e, ok := decodeEnvelopeFast(b)
	if !ok {
		if err := json.Unmarshal(b, &e); err != nil {
			return Envelope{}, errors.Wrap(err, "decode event envelope")
		}
	}
	if e.Type == "" || e.AggregateID == "" || e.Version == 0 {
		return Envelope{}, errors.Newf("decode event envelope: missing type, aggregate or version")
	}
	return e, nil
}

// CheckLink reports whether e follows prev in a hash chain: versions are
// consecutive, prev_hash names prev's hash and e's own hash is genuine.
// prev is nil for the first event of an aggregate.
func CheckLink(prev *Envelope, e *Envelope) error {
	wantVersion, wantPrev := uint64(1), ""
	if prev != nil {
		wantVersion, wantPrev = prev.Version+1, prev.Hash
	}
	switch {
	case e.Version != wantVersion:
		return errors.Newf("version %d where %d was expected", e.Version, wantVersion)
	case e.PrevHash != wantPrev:
		return errors.Newf("prev_hash does not match the hash of version %d", wantVersion-1)
	case e.ComputeHash() != e.Hash:
		return errors.Newf("hash of version %d does not match its content", e.Version)
	}
	return nil
}
