package eventstore

import "context"

// LastSeqs returns, per shard, the sequence of the last message in its
// stream, 0 when it is empty: no Consistency-Token this store handed out can
// be beyond them. It returns domain.ErrUnavailable when JetStream does not answer.
func (s *Store) LastSeqs(ctx context.Context) ([]uint64, error) {
	seqs := make([]uint64, len(s.shards))
	for k, sh := range s.shards {
		seq, err := s.lastSeq(ctx, sh)
		if err != nil {
			return nil, err
		}
		seqs[k] = seq
	}
	return seqs, nil
}
