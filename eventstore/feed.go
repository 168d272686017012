package eventstore

import (
	"context"
	"strconv"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The integration feed (package feed) is a stream of its own beside the
// event store's: outside readers are given read access to it alone, its
// messages are a published contract rather than the store's envelopes, and
// a reader of it cannot touch the store's history, hash chains or
// concurrency control.
const (
	// FeedStream is the name of the feed's stream.
	FeedStream = "FEED"
	// FeedSubjects is the first token of every feed subject (feed.v1.…).
	FeedSubjects = "feed"
	// feedDuplicateWindow covers a batch republished after its
	// acknowledgement was lost; the forwarder's resume point, read from
	// the stream itself, is what keeps it from publishing twice otherwise.
	feedDuplicateWindow = 2 * time.Minute
	// MaxFeedBatch is the most messages PublishFeed takes at once, under
	// the server's atomic batch limit.
	MaxFeedBatch = 500
)

// FeedMessage is one message for PublishFeed.
type FeedMessage struct {
	Subject string
	// ID is the message's Nats-Msg-Id, the integration event's id.
	ID     string
	Header map[string]string
	Data   []byte
}

// FeedEntry is one stored message of the feed.
type FeedEntry struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
	// Pending is how many entries followed it when it was delivered.
	Pending uint64
}

// OpenFeed makes sure the feed's stream exists. It fails when JetStream is
// unreachable or refuses the configuration.
func (s *Store) OpenFeed(ctx context.Context) error {
	return ensureStream(ctx, s.js, jetstream.StreamConfig{
		Name:               FeedStream,
		Description:        "order engine integration events (docs/feed.md)",
		Subjects:           []string{FeedSubjects + ".>"},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Replicas:           s.replicas,
		Duplicates:         feedDuplicateWindow,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		MaxMsgsPerSubject:  -1,
		MaxMsgs:            -1,
		MaxBytes:           -1,
	})
}

// PublishFeed stores msgs in the feed as one atomic batch: all of them or
// none, so that the last stored message always says how far the whole
// batch went. after is the feed's last sequence the caller knows: the
// batch is refused (domain.ErrConflict) if another writer stored anything
// since, so two engines' forwarders can never interleave or repeat a
// batch, however late one of them is. It fails with domain.ErrUnavailable
// when NATS is not reachable, and with a refusal when JetStream refuses
// the batch (a message id it already holds: the batch was stored before).
func (s *Store) PublishFeed(ctx context.Context, msgs []FeedMessage, after uint64) (lastSeq uint64, err error) {
	if len(msgs) == 0 || len(msgs) > MaxFeedBatch {
		return 0, errors.AssertionFailedf("feed batch of %d messages", len(msgs))
	}
	if !s.nc.IsConnected() {
		return 0, errNotConnected
	}
	ctx, cancel := s.watch.bind(ctx, s.timeout)
	defer cancel()
	out := make([]*nats.Msg, len(msgs))
	for i, fm := range msgs {
		m := nats.NewMsg(fm.Subject)
		m.Data = fm.Data
		for k, v := range fm.Header {
			m.Header.Set(k, v)
		}
		m.Header.Set(nats.MsgIdHdr, fm.ID)
		if i == 0 {
			m.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(after, 10))
		}
		out[i] = m
	}
	pr, err := publishAtomic(ctx, s.nc, out, "publish feed batch")
	if err != nil {
		return 0, err
	}
	if pr.Error != nil {
		return 0, errors.Wrap(publishError(pr.Error), "publish feed batch")
	}
	if pr.Duplicate {
		return 0, errors.New("feed message already stored")
	}
	return pr.Seq, nil
}

// LastFeedEntry returns the feed's last message; ok is false when the
// feed is empty.
func (s *Store) LastFeedEntry(ctx context.Context) (e FeedEntry, ok bool, err error) {
	st, err := s.js.Stream(ctx, FeedStream)
	if err != nil {
		return FeedEntry{}, false, errors.Wrap(unavailable(err), "read feed stream")
	}
	m, err := st.GetLastMsgForSubject(ctx, FeedSubjects+".>")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return FeedEntry{}, false, nil
	}
	if err != nil {
		return FeedEntry{}, false, errors.Wrap(unavailable(err), "read the feed's last message")
	}
	return FeedEntry{Seq: m.Sequence, Subject: m.Subject, Header: m.Header, Data: m.Data}, true, nil
}

// FeedHead returns the sequence of the feed's last message, 0 when empty.
func (s *Store) FeedHead(ctx context.Context) (uint64, error) {
	st, err := s.js.Stream(ctx, FeedStream)
	if err != nil {
		return 0, errors.Wrap(unavailable(err), "read feed stream")
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, errors.Wrap(unavailable(err), "read feed stream info")
	}
	return info.State.LastSeq, nil
}

// FeedReader delivers the feed's messages in order. It is not safe for
// concurrent use; Stop releases it.
type FeedReader struct {
	it jetstream.MessagesContext
}

// ReadFeed delivers the feed's messages from sequence from on, waiting for
// new ones, through an ordered consumer (no state on the server: the
// reader keeps its own checkpoint).
func (s *Store) ReadFeed(ctx context.Context, from uint64, buffer int) (*FeedReader, error) {
	cons, err := s.js.OrderedConsumer(ctx, FeedStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   max(from, 1),
	})
	if err != nil {
		return nil, errors.Wrap(unavailable(err), "create feed consumer")
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(buffer))
	if err != nil {
		return nil, errors.Wrap(unavailable(err), "consume feed")
	}
	return &FeedReader{it: it}, nil
}

// Next waits for the next message until ctx ends.
func (r *FeedReader) Next(ctx context.Context) (FeedEntry, error) {
	m, err := r.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		return FeedEntry{}, errors.Wrap(err, "next feed message")
	}
	md, err := m.Metadata()
	if err != nil {
		return FeedEntry{}, errors.Wrap(err, "feed message metadata")
	}
	return FeedEntry{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(), Pending: md.NumPending}, nil
}

// Stop releases the reader.
func (r *FeedReader) Stop() { r.it.Stop() }
