package queries

import (
	"context"
	"sync"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/eventstore"
)

// HeadReader tells the last sequence of every shard of the event store: a
// Consistency-Token beyond them was never handed out, and waiting for it
// would only hold a request slot for the whole consistency timeout.
type HeadReader interface {
	LastSeqs(ctx context.Context) ([]uint64, error)
}

// HeadCache shares reads of the store's last sequence between requests. A
// token at or below the last sequence seen needs no read at all; a token
// beyond it needs a read that started after the request arrived (an
// acknowledged write is in the store before its token reaches the client),
// and every request waiting at that moment shares the one read. So a flood
// of tokens from the future costs one store round trip per round trip, not
// one per request.
type HeadCache struct {
	store HeadReader
	mu    sync.Mutex
	last  []uint64 // per shard
	// gen counts reads started; done is closed when read gen finishes.
	gen     uint64
	running *headRead
}

// headReadTimeout bounds one read of the last sequence, as /readyz's ping.
const headReadTimeout = 2 * time.Second

type headRead struct {
	gen  uint64
	done chan struct{}
	seqs []uint64
	err  error
}

// NewHeadCache reads the last sequence from store.
func NewHeadCache(store HeadReader) *HeadCache { return &HeadCache{store: store} }

// Covers reports whether token is, on every shard, at or below the store's
// last sequence, reading them from the store when the cached values are
// not enough. Its error
// is the store's (ErrUnavailable when it does not answer) or ctx's.
func (h *HeadCache) Covers(ctx context.Context, token eventstore.Token) (bool, error) {
	h.mu.Lock()
	if token.CoveredBy(h.last) {
		h.mu.Unlock()
		return true, nil
	}
	// A read already running may have asked before this token's write was
	// acknowledged: only one started from here on can say "beyond".
	after := h.gen
	h.mu.Unlock()
	for {
		rd := h.read()
		select {
		case <-rd.done:
		case <-ctx.Done():
			return false, errors.Wrap(ctx.Err(), "read the store's last sequence")
		}
		if rd.err != nil {
			return false, rd.err
		}
		if rd.gen > after {
			return token.CoveredBy(rd.seqs), nil
		}
	}
}

// read returns the running read, or starts one when none is running. The
// caller waits for it and, when it started too early, asks again.
func (h *HeadCache) read() *headRead {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running != nil {
		return h.running
	}
	h.gen++
	rd := &headRead{gen: h.gen, done: make(chan struct{})}
	h.running = rd
	go func() {
		// Detached from any one request: the read is shared by all that wait.
		ctx, cancel := context.WithTimeout(context.Background(), headReadTimeout)
		seqs, err := h.store.LastSeqs(ctx)
		cancel()
		h.mu.Lock()
		rd.seqs, rd.err = seqs, err
		if err == nil {
			h.last = eventstore.Token(h.last).Max(seqs)
		}
		h.running = nil
		h.mu.Unlock()
		close(rd.done)
	}()
	return rd
}
