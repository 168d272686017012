// Package commands is the write side: it decides domain commands against
// the aggregate's current state and appends the events through the event
// store, which retries optimistic-concurrency conflicts a bounded number of
// times and checks If-Match. A command method takes the command and returns
// a domain Result (state, version, position, events, or a replay of the
// first outcome under an idempotency key); it knows nothing of HTTP.
//
// One file per command holds its request, its method and its HTTP handler
// (one line, naming the shared edge helper and how to render the result);
// the HTTP edge itself is http.go alone: decoding, Idempotency-Key and
// If-Match parsing, and rendering a Result as status, ETag, Location,
// Consistency-Token and body, the same way for a first answer and a replay.
// It stays in this package rather than its own so that a command and its
// route stay side by side, and it calls the command methods one way only.
package commands

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
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
	// Backlog, when set, refuses new orders on partitions too far behind,
	// and RunWorkers samples it; nil: orders are never refused for it.
	Backlog *Backlog

	// DirectPlacement lets the SKU's sequencer place single-line orders
	// itself (place_direct.go); on unless turned off before orders are
	// placed (ENGINE_DIRECT_PLACEMENT=off, engine bench -direct=false).
	DirectPlacement bool

	inflight   inflightKeys
	placements placements
}

// NewApp wires the command side onto an open store; confirmed orders that
// stay unpaid for ttl expire.
func NewApp(store *eventstore.Store, log *slog.Logger, ttl time.Duration) *App {
	return &App{
		Store:           store,
		ReservationTTL:  ttl,
		Orders:          eventstore.NewRepository(store, eventstore.NewOrderKind(ttl), 100_000),
		SKUs:            eventstore.NewRepository(store, eventstore.SKUKind, 100_000),
		Now:             func() time.Time { return time.Now().UTC() },
		NewID:           func() string { return uuid.Must(uuid.NewV7()).String() },
		Log:             log,
		DirectPlacement: true,
	}
}

// Meta is what a command carries besides its own fields.
type Meta struct {
	CommandID     string
	RequestID     string
	CorrelationID string
	// IdemKey is the digest of the caller's Idempotency-Key scoped to the
	// caller and the resource (method and path), empty without one;
	// Fingerprint identifies the request (method, path and body).
	IdemKey     string
	Fingerprint string
	// IfMatch is the order version the caller expects, nil without If-Match.
	IfMatch *uint64
}

// Result is what a command did, in domain terms: the aggregate's State at
// Version as the command left it, the stream Position of its last event
// (the consistency token) and the Events it appended. Replayed says the
// command's idempotency key had answered an earlier, identical request:
// then nothing was appended, Events is nil and the rest is that first
// outcome. How it is answered (status, headers, body) is the HTTP edge's
// business (http.go).
type Result[S, E any] struct {
	State    S
	Version  uint64
	Position eventstore.Position
	Events   []E
	Replayed bool
}

// OrderResult is the result of a command on an order, SKUResult on a SKU.
type (
	OrderResult = Result[domain.Order, domain.OrderEvent]
	SKUResult   = Result[domain.SKU, domain.SKUEvent]
)

// update runs one command against aggregate id through repo: the store
// checks If-Match (m.IfMatch) against the current version, decide (the
// domain's decider, called by the store: no closure of this package) decides cmd,
// and the store appends. isNew says id was just generated, so the aggregate
// need not be read first (eventstore.UpdateOptions.New); with an
// idempotency key it is then the key's record (KeyedCreate). It fails with
// decide's errors, domain.ErrPreconditionFailed, ErrConflict (still
// conflicting after the retries), ErrIdempotencyKeyReused (the key answered
// a different request) or ErrUnavailable.
func update[S, E, C any](ctx context.Context, repo *eventstore.Repository[S, E], id string, isNew bool, m Meta,
	decide func(S, C) ([]E, error), cmd C) (Result[S, E], error) {
	res, events, err := eventstore.Execute(ctx, repo, id, eventstore.UpdateOptions[S]{
		CommandID: m.CommandID, CausationID: m.RequestID, CorrelationID: m.CorrelationID,
		IdemKey: m.IdemKey, New: isNew, KeyedCreate: isNew && m.IdemKey != "", Fingerprint: m.Fingerprint,
		ExpectedVersion: m.IfMatch,
	}, decide, cmd)
	if err != nil {
		return Result[S, E]{}, err
	}
	if rp := res.Replay; rp != nil {
		if rp.Fingerprint != m.Fingerprint {
			return Result[S, E]{}, domain.ErrIdempotencyKeyReused
		}
		return Result[S, E]{State: rp.After.State, Version: rp.After.Version, Replayed: true,
			Position: eventstore.Position{Shard: repo.ShardOf(id), Seq: rp.After.LastSeq}}, nil
	}
	return Result[S, E]{State: res.After.State, Version: res.After.Version, Events: events,
		Position: eventstore.Position{Shard: repo.ShardOf(id), Seq: res.After.LastSeq}}, nil
}
