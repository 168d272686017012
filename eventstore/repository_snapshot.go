package eventstore

import (
	"context"
	"encoding/json"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/internal/metrics"
)

// snapshots returns the store's snapshots when this kind keeps them.
func (r *Repository[S, E]) snapshots() *snapshots {
	if r.kind.SnapshotFormat == 0 {
		return nil
	}
	return r.store.snaps
}

// storedSnapshot reads the stored snapshot of id, if there is one of the
// kind's format that is ahead of base and not past upTo. Whether it
// matches the events is for replay to check.
func (r *Repository[S, E]) storedSnapshot(ctx context.Context, id string, base Snapshot[S], upTo uint64) (Snapshot[S], bool) {
	stored, ok := r.store.snaps.get(ctx, snapshotKey(r.kind.Name, id))
	if !ok {
		metrics.SnapshotLoads.WithLabelValues(r.kind.Name, "missing").Inc()
		return Snapshot[S]{}, false
	}
	var state S
	if stored.Format != r.kind.SnapshotFormat || stored.Version <= base.Version || stored.LastSeq <= base.LastSeq ||
		stored.LastSeq > upTo || json.Unmarshal(stored.State, &state) != nil {
		metrics.SnapshotLoads.WithLabelValues(r.kind.Name, "ignored").Inc()
		return Snapshot[S]{}, false
	}
	return Snapshot[S]{State: state, Version: stored.Version, LastSeq: stored.LastSeq, LastHash: stored.LastHash}, true
}

// enqueueSnapshot hands snap to the background writer. snap's state is an
// immutable value (the folds copy on write), so the writer may encode it
// while commands go on.
func (r *Repository[S, E]) enqueueSnapshot(id string, snap Snapshot[S]) {
	format := r.kind.SnapshotFormat
	r.store.snaps.enqueue(snapshotJob{
		aggregate: r.kind.Name,
		key:       snapshotKey(r.kind.Name, id),
		encode: func() ([]byte, error) {
			state, err := json.Marshal(snap.State)
			if err != nil {
				return nil, errors.Wrap(err, "encode snapshot state")
			}
			return json.Marshal(storedSnapshot{Format: format, Version: snap.Version, LastSeq: snap.LastSeq, LastHash: snap.LastHash, State: state})
		},
	})
}
