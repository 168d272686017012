package eventstore

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats.go"

	"github.com/orderengine/engine/domain"
)

// RawMsg is one stored message as read back from the stream.
type RawMsg struct {
	Seq     uint64
	Subject string
	Time    time.Time
	Data    []byte
	// Header is the direct get's answer's headers: the stored message's
	// own (the trace context among them) and the server's Nats-* ones.
	Header nats.Header
}

// readBatch is how many messages one direct-get request returns.
const readBatch = 256

// lastMsg returns the last message stored on subject through a direct get,
// which reads without creating a consumer. ok is false when the subject has
// no message.
func (s *Store) lastMsg(ctx context.Context, sh *shard, subject string) (m RawMsg, ok bool, err error) {
	if !s.nc.IsConnected() {
		return RawMsg{}, false, errNotConnected
	}
	ctx, cancel := s.watch.bind(ctx, s.timeout)
	defer cancel()
	resp, err := s.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+sh.stream+"."+sh.subject(subject), nil)
	if err != nil {
		return RawMsg{}, false, errors.Wrapf(requestError(ctx, err), "read last event of %s", subject)
	}
	switch status := resp.Header.Get("Status"); status {
	case "":
	case "404":
		return RawMsg{}, false, nil
	default:
		return RawMsg{}, false, statusError("read last event of "+subject, status, resp.Header.Get("Description"))
	}
	m, err = rawFromDirect(sh, resp)
	return m, err == nil, err
}

// nextMsg returns the first message on subject (wildcards allowed) at or
// after sequence from, and its headers, through one direct get; ok is false
// when there is none.
func (s *Store) nextMsg(ctx context.Context, sh *shard, subject string, from uint64) (m RawMsg, h nats.Header, ok bool, err error) {
	if !s.nc.IsConnected() {
		return RawMsg{}, nil, false, errNotConnected
	}
	ctx, cancel := s.watch.bind(ctx, s.timeout)
	defer cancel()
	req, _ := json.Marshal(directBatchRequest{Seq: from, NextFor: sh.subject(subject)})
	resp, err := s.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+sh.stream, req)
	if err != nil {
		return RawMsg{}, nil, false, errors.Wrapf(requestError(ctx, err), "read the next message of %s", subject)
	}
	switch status := resp.Header.Get("Status"); status {
	case "":
	case "404":
		return RawMsg{}, nil, false, nil
	default:
		return RawMsg{}, nil, false, statusError("read the next message of "+subject, status, resp.Header.Get("Description"))
	}
	m, err = rawFromDirect(sh, resp)
	return m, resp.Header, err == nil, err
}

// readSubject calls fn for every message on subject (which may contain
// wildcards) of shard sh with a sequence in [from, upTo], in stream order, using batched
// direct gets: no consumer is created, however often it is called.
// upTo 0 means up to the end of the stream.
func (s *Store) readSubject(ctx context.Context, sh *shard, subject string, from, upTo uint64, fn func(RawMsg) error) error {
	if from == 0 {
		from = 1
	}
	for {
		next, done, err := s.readPage(ctx, sh, subject, from, upTo, fn)
		if err != nil || done {
			return err
		}
		from = next
	}
}

type directBatchRequest struct {
	Seq     uint64 `json:"seq"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch"`
	UpToSeq uint64 `json:"up_to_seq,omitempty"`
}

// readPage reads one batch; it returns the sequence to continue from and
// whether the range is exhausted.
func (s *Store) readPage(ctx context.Context, sh *shard, subject string, from, upTo uint64, fn func(RawMsg) error) (uint64, bool, error) {
	if !s.nc.IsConnected() {
		return 0, false, errNotConnected
	}
	ctx, cancel := s.watch.bind(ctx, s.timeout)
	defer cancel()
	inbox := s.nc.NewInbox()
	// One answer is at most readBatch messages and an end-of-batch status:
	// a channel that size, not SubscribeSync's 65,536 slots (512 KiB per
	// read, hundreds of reads at once under load).
	answers := make(chan *nats.Msg, readBatch+2)
	sub, err := s.nc.ChanSubscribe(inbox, answers)
	if err != nil {
		return 0, false, errors.Wrap(unavailable(err), "subscribe for direct get")
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, _ := json.Marshal(directBatchRequest{Seq: from, NextFor: sh.subject(subject), Batch: readBatch, UpToSeq: upTo})
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+sh.stream, inbox, req); err != nil {
		return 0, false, errors.Wrap(unavailable(err), "request direct get")
	}
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	got := 0
	last := from - 1
	for {
		var msg *nats.Msg
		select {
		case msg = <-answers:
		case <-ctx.Done():
			return 0, false, errors.Wrapf(requestError(ctx, ctx.Err()), "read events of %s", subject)
		case <-check.C:
			// A subscription's channel is not closed with the connection.
			if !s.nc.IsConnected() {
				return 0, false, errors.Wrapf(errNotConnected, "read events of %s", subject)
			}
			continue
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "404", "408":
			return 0, true, nil
		case "204": // end of batch
			pending, _ := strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
			if got < readBatch || pending == 0 {
				return 0, true, nil
			}
			return last + 1, false, nil
		default:
			return 0, false, statusError("read events of "+subject, status, msg.Header.Get("Description"))
		}
		m, err := rawFromDirect(sh, msg)
		if err != nil {
			return 0, false, err
		}
		if upTo != 0 && m.Seq > upTo {
			// The server honours up_to_seq only for some requests; the
			// range is ours to enforce.
			return 0, true, nil
		}
		got++
		last = m.Seq
		if err := fn(m); err != nil {
			return 0, false, err
		}
	}
}

// rawFromDirect reads a direct get's answer; its subject comes back
// logical, without the shard prefix.
func rawFromDirect(sh *shard, msg *nats.Msg) (RawMsg, error) {
	seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return RawMsg{}, errors.Wrap(err, "direct get answer without a sequence")
	}
	ts, _ := time.Parse(time.RFC3339Nano, msg.Header.Get("Nats-Time-Stamp"))
	return RawMsg{Seq: seq, Subject: sh.logical(msg.Header.Get("Nats-Subject")), Time: ts, Data: msg.Data, Header: msg.Header}, nil
}

// History calls fn with every stored envelope of one aggregate subject
// (orders.<id>, inventory.<sku>), in stream order of its shard, as stored: it does not judge the hash chain, so that an
// auditor can see a broken one (CheckLink does). It returns
// domain.ErrNotFound when the subject holds no event.
func (s *Store) History(ctx context.Context, subject string, fn func(seq uint64, e Envelope) error) error {
	found := false
	sh := s.shardFor(subject[strings.IndexByte(subject, '.')+1:])
	err := s.readSubject(ctx, sh, subject, 1, 0, func(m RawMsg) error {
		e, err := DecodeEnvelope(m.Data)
		if err != nil {
			return errors.Wrapf(err, "%s seq %d", subject, m.Seq)
		}
		found = true
		return fn(m.Seq, e)
	})
	if err != nil {
		return err
	}
	if !found {
		return errors.Wrapf(domain.ErrNotFound, "no events on %s", subject)
	}
	return nil
}

// statusError is a direct get's answer with an unexpected status. A 503
// (no responders: the stream's server is going away, or not there yet) is
// an unavailable store, which a client retries, not an internal error.
func statusError(what, status, description string) error {
	err := errors.Newf("%s: status %s %s", what, status, description)
	if status == "503" {
		return errors.Mark(err, domain.ErrUnavailable)
	}
	return err
}
