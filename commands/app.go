// Package commands is the write side: it turns requests into domain
// commands, decides them against the aggregate's current state and appends
// the events, retrying optimistic-concurrency conflicts a bounded number of
// times. One file per command holds its request, its Handle method and its
// HTTP handler.
package commands

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/httpx"
)

// App holds what the command handlers need.
type App struct {
	Store  *eventstore.Store
	Orders *eventstore.Repository[domain.Order, domain.OrderEvent]
	SKUs   *eventstore.Repository[domain.SKU, domain.SKUEvent]
	Now    func() time.Time
	NewID  func() string
	Log    *slog.Logger
	// ReservationTTL is how long a confirmed, unpaid order holds its stock.
	ReservationTTL time.Duration

	inflight inflightKeys
}

// NewApp wires the command side onto an open store; confirmed orders that
// stay unpaid for ttl expire.
func NewApp(store *eventstore.Store, log *slog.Logger, ttl time.Duration) *App {
	return &App{
		Store:          store,
		ReservationTTL: ttl,
		Orders:         eventstore.NewRepository(store, eventstore.NewOrderKind(ttl), 100_000),
		SKUs:           eventstore.NewRepository(store, eventstore.SKUKind, 100_000),
		Now:            func() time.Time { return time.Now().UTC() },
		NewID:          func() string { return uuid.Must(uuid.NewV7()).String() },
		Log:            log,
	}
}

// Meta is what a command carries besides its own fields.
type Meta struct {
	CommandID     string
	RequestID     string
	CorrelationID string
	// IdemKey is the digest of the caller's Idempotency-Key scoped to the
	// caller, empty without one; Fingerprint identifies the request body.
	IdemKey     string
	Fingerprint string
	// IfMatch is the order version the caller expects, nil without If-Match.
	IfMatch *uint64
}

// Response is what a command answers; it is also what an idempotency
// record keeps for replay.
type Response struct {
	Status int
	Header map[string]string
	Body   any
}

// Outcome is a handled command: its response and the position of its last
// event, Seq in the stream of shard Shard (the consistency token), or the
// replay of an earlier response.
type Outcome struct {
	Response Response
	Seq      uint64
	Shard    int
	Replay   *eventstore.IdemRecord
}

// update runs one command against an aggregate through repo: If-Match is
// checked against the current version, the decider decides, and the response
// is rendered from the state after the events, both for the caller and,
// with an idempotency key, for the record stored with the events.
func update[S, E any](ctx context.Context, repo *eventstore.Repository[S, E], id string, m Meta,
	decide func(S) ([]E, error), render func(eventstore.Snapshot[S]) Response) (Outcome, error) {
	return updateAggregate(ctx, repo, id, false, m, decide, render)
}

// updateAggregate is update; isNew says id was just generated, so the
// aggregate need not be read first (eventstore.UpdateOptions.New).
func updateAggregate[S, E any](ctx context.Context, repo *eventstore.Repository[S, E], id string, isNew bool, m Meta,
	decide func(S) ([]E, error), render func(eventstore.Snapshot[S]) Response) (Outcome, error) {
	res, err := repo.Update(ctx, id, eventstore.UpdateOptions[S]{
		CommandID: m.CommandID, CausationID: m.RequestID, CorrelationID: m.CorrelationID,
		IdemKey: m.IdemKey, New: isNew,
		Record: func(after eventstore.Snapshot[S]) (eventstore.IdemRecord, error) {
			return record(m, render(after))
		},
	}, func(s eventstore.Snapshot[S]) ([]E, error) {
		if m.IfMatch != nil && s.Version > 0 && *m.IfMatch != s.Version {
			return nil, httpx.PreconditionFailed(*m.IfMatch, s.Version)
		}
		return decide(s.State)
	})
	if err != nil {
		return Outcome{}, err
	}
	if res.Replay != nil {
		return Outcome{Replay: res.Replay}, nil
	}
	return Outcome{Response: render(res.After), Seq: res.After.LastSeq, Shard: repo.ShardOf(id)}, nil
}

// newOrderID returns a new order id. With an idempotency key in a sharded
// store, the id is drawn until it falls on the key's shard: the key's
// record is stored on the shard of the order the command creates, so a
// retry, which draws another id, must land on the same shard to find it.
func (a *App) newOrderID(m Meta) string {
	id := a.NewID()
	n := a.Store.Shards()
	if m.IdemKey == "" || n == 1 {
		return id
	}
	want := eventstore.ShardOf(m.IdemKey, n)
	// Each draw hits with probability 1/n: 64n draws all miss about
	// once in e^64 keys.
	for range 64 * n {
		if eventstore.ShardOf(id, n) == want {
			return id
		}
		id = a.NewID()
	}
	return id
}

// record turns a response into the idempotency record stored with the events.
func record(m Meta, r Response) (eventstore.IdemRecord, error) {
	body, err := json.Marshal(r.Body)
	if err != nil {
		return eventstore.IdemRecord{}, err
	}
	return eventstore.IdemRecord{
		Fingerprint: m.Fingerprint, CommandID: m.CommandID, Status: r.Status,
		Header: r.Header, Body: body, StoredAt: time.Now().UTC(),
	}, nil
}
