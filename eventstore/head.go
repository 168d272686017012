package eventstore

import "context"

// LastSeq returns the sequence of the last message in the events stream, 0
// when it is empty: no Consistency-Token this store handed out can be
// beyond it. It returns domain.ErrUnavailable when JetStream does not answer.
func (s *Store) LastSeq(ctx context.Context) (uint64, error) { return s.lastSeq(ctx) }
