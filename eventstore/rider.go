package eventstore

import (
	"strconv"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Rider is an append to one aggregate that rides in the atomic batch of an
// update of another aggregate on the same shard (UpdateFoldedWith): both
// are stored or neither. The reservation processor uses it to tell an
// order its outcome in the batch that stores the SKU's decision, which
// saves the order a batch of its own and the saga's round trip.
type Rider struct {
	shard    *shard
	subject  string
	msgs     []*nats.Msg
	stored   func(firstSeq uint64)
	firstSeq uint64
}

// FirstSeq returns the stream sequence of the rider's first message once
// the update it rode with is stored, 0 until then.
func (rd *Rider) FirstSeq() uint64 { return rd.firstSeq }

// Messages returns how many messages the rider adds to the batch.
func (rd *Rider) Messages() int { return len(rd.msgs) }

// AddHeader adds h to the headers of the message of the rider's event i
// (in the order Prepare was given them): facts about this run of the
// command, such as a trace context per event.
func (rd *Rider) AddHeader(i int, h nats.Header) {
	if i < 0 || i >= len(rd.msgs) {
		return
	}
	for k, v := range h {
		rd.msgs[i].Header[k] = v
	}
}

// FenceRequests makes the batch the rider rides in conditional on the last
// reservation request stored for sku on the rider's shard being the one at
// stream sequence seq (0: none was ever stored): a request stored since
// refuses the whole batch, so a decision on placements (direct placement)
// can never overtake a request stored before it. The check rides on the
// rider's last message, which must not be its first (that one checks the
// rider's own subject).
func (rd *Rider) FenceRequests(sku string, seq uint64) error {
	if len(rd.msgs) < 2 {
		return errors.AssertionFailedf("a fence needs a rider of two messages, %s has %d", rd.subject, len(rd.msgs))
	}
	m := rd.msgs[len(rd.msgs)-1]
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seq, 10))
	m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, rd.shard.subject(reservationSubject(sku)))
	return nil
}

// Cached returns the last snapshot of aggregate id this process knows,
// without reading the store; ok is false when it knows none. It may be
// stale: an append prepared on it fails rather than overwrite a newer
// state, because its first message expects the snapshot's sequence.
func (r *Repository[S, E]) Cached(id string) (Snapshot[S], bool) {
	return r.cache.get(r.Subject(id))
}

// Prepare seals events, decided on snap, into a Rider for aggregate id.
// Nothing is stored until the update it rides with is; the rider then
// updates this repository's cache and wakes the aggregate's waiters as
// Update would.
func (r *Repository[S, E]) Prepare(id string, snap Snapshot[S], events []E, o UpdateOptions[S]) (*Rider, error) {
	if o.CommandID == "" {
		return nil, errors.AssertionFailedf("rider without a command id")
	}
	if len(events) == 0 {
		return nil, errors.AssertionFailedf("rider without events")
	}
	subject := r.Subject(id)
	sd, err := r.seal(subject, snap, events, nil, o)
	if err != nil {
		return nil, err
	}
	rd := &Rider{shard: sd.shard, subject: subject, msgs: sd.msgs}
	rd.stored = func(first uint64) {
		rd.firstSeq = first
		after := sd.res.After
		after.LastSeq = first + uint64(sd.events) - 1
		r.cache.put(subject, after)
		r.store.announce(subject)
		if sn := r.snapshots(); sn.due(snap.Version, after.Version) {
			r.enqueueSnapshot(id, after)
		}
	}
	return rd, nil
}
