package eventstore

import (
	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
)

// Rider is an append to one aggregate that rides in the atomic batch of an
// update of another aggregate on the same shard (UpdateFoldedWith): both
// are stored or neither. The reservation processor uses it to tell an
// order its outcome in the batch that stores the SKU's decision, which
// saves the order a batch of its own and the saga's round trip.
type Rider struct {
	shard   *shard
	subject string
	msgs    []*nats.Msg
	stored  func(firstSeq uint64)
}

// Messages returns how many messages the rider adds to the batch.
func (rd *Rider) Messages() int { return len(rd.msgs) }

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
	return &Rider{shard: sd.shard, subject: subject, msgs: sd.msgs, stored: func(first uint64) {
		after := sd.res.After
		after.LastSeq = first + uint64(sd.events) - 1
		r.cache.put(subject, after)
		r.store.announce(subject)
		if sn := r.snapshots(); sn.due(snap.Version, after.Version) {
			r.enqueueSnapshot(id, after)
		}
	}}, nil
}
