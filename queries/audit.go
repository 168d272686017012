package queries

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/go-chi/chi/v5"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/eventstore"
	"github.com/orderengine/engine/internal/httpx"
)

// EventHistory reads an aggregate's events straight from the event store,
// in order: audit answers never come from the read models.
type EventHistory interface {
	History(ctx context.Context, subject string, fn func(seq uint64, e eventstore.Envelope) error) error
}

var _ EventHistory = (*eventstore.Store)(nil)

// AuditEvent is one stored event as an auditor sees it.
type AuditEvent struct {
	Seq        uint64          `json:"seq"`
	Version    uint64          `json:"version"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
	Hash       string          `json:"hash"`
	PrevHash   string          `json:"prev_hash"`
	// The ids that tie the event to the request that caused it: the
	// command, the request (X-Request-Id) and the caller's correlation id
	// (X-Correlation-Id, else the request id).
	CommandID     string `json:"command_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
}

// HandleOrderEvents serves GET /v1/audit/orders/{id}/events.
func HandleOrderEvents(h EventHistory, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		if !domain.ValidOrderID(id) {
			httpx.Fail(w, r, orDiscard(log), errors.Wrapf(domain.ErrNotFound, "no order %q", id))
			return
		}
		serveEvents(w, r, h, orDiscard(log), eventstore.OrderSubjects+"."+id)
	}
}

// HandleInventoryEvents serves GET /v1/audit/inventory/{sku}/events.
func HandleInventoryEvents(h EventHistory, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sku := chi.URLParam(r, "sku")
		if !domain.ValidSKU(sku) {
			httpx.Fail(w, r, orDiscard(log), &domain.ValidationError{Fields: map[string]string{"sku": domain.TokenRule}})
			return
		}
		serveEvents(w, r, h, orDiscard(log), eventstore.InventorySubjects+"."+sku)
	}
}

func serveEvents(w http.ResponseWriter, r *http.Request, h EventHistory, log *slog.Logger, subject string) {
	if err := newParams(r).err(); err != nil {
		httpx.Fail(w, r, log, err)
		return
	}
	events := []AuditEvent{}
	err := h.History(r.Context(), subject, func(seq uint64, e eventstore.Envelope) error {
		events = append(events, AuditEvent{Seq: seq, Version: e.Version, Type: e.Type, OccurredAt: e.OccurredAt,
			Data: e.Data, Hash: e.Hash, PrevHash: e.PrevHash,
			CommandID: e.CommandID, CausationID: e.CausationID, CorrelationID: e.CorrelationID})
		return nil
	})
	if err != nil {
		httpx.Fail(w, r, log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string][]AuditEvent{"events": events})
}

// OrderAsOf is an order rebuilt from its events up to a point.
type OrderAsOf struct {
	OrderView
	// AsOf is the time asked for, if any; the state includes every event
	// that occurred at or before it.
	AsOf *time.Time `json:"as_of,omitempty"`
}

// HandleOrderState serves GET /v1/audit/orders/{id}/state?version=N or
// ?as_of=RFC3339 (or neither: the current state): the order rebuilt by the
// domain's own EvolveOrder from its stored events, old schema versions
// upcast by the domain's decoder, never from the read model.
func HandleOrderState(h EventHistory, log *slog.Logger) http.HandlerFunc {
	log = orDiscard(log)
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		if !domain.ValidOrderID(id) {
			httpx.Fail(w, r, log, errors.Wrapf(domain.ErrNotFound, "no order %q", id))
			return
		}
		p := newParams(r, "version", "as_of")
		version := uint64(p.intIn("version", 0, 1, maxInt64))
		var asOf *time.Time
		if s := p.str("as_of"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				p.set("as_of", "must be an RFC 3339 time")
			} else {
				asOf = &t
			}
		}
		if version > 0 && asOf != nil {
			p.set("version", "give version or as_of, not both")
		}
		if err := p.err(); err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		var state domain.Order
		var at uint64
		err := h.History(r.Context(), eventstore.OrderSubjects+"."+id, func(_ uint64, e eventstore.Envelope) error {
			if (version > 0 && e.Version > version) || (asOf != nil && e.OccurredAt.After(*asOf)) {
				return nil
			}
			ev, err := eventstore.DecodeOrderEvent(e.Type, e.SchemaVersion, e.Data)
			if err != nil {
				return errors.Wrapf(err, "order %s version %d", id, e.Version)
			}
			state, at = domain.EvolveOrder(state, ev), e.Version
			return nil
		})
		switch {
		case err != nil:
			httpx.Fail(w, r, log, err)
		case version > at:
			httpx.Fail(w, r, log, errors.Wrapf(domain.ErrNotFound, "order %s has no version %d", id, version))
		case !state.Exists():
			httpx.Fail(w, r, log, errors.Wrapf(domain.ErrNotFound, "order %s did not exist yet at that time", id))
		default:
			httpx.WriteJSON(w, http.StatusOK, OrderAsOf{OrderView: NewOrderView(state, at), AsOf: asOf})
		}
	}
}

// EventExporter streams the store's events in order.
type EventExporter interface {
	Export(ctx context.Context, from, to uint64, fn func(pos eventstore.Position, subject string, e eventstore.Envelope) error) error
}

var _ EventExporter = (*eventstore.Store)(nil)

// exportLine is one line of the export: the stored envelope with where it is.
type exportLine struct {
	// Shard is the shard whose stream Seq counts in; absent for shard 0,
	// so that a one-shard store exports what it always has.
	Shard   int    `json:"shard,omitempty"`
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	eventstore.Envelope
}

// HandleExport serves GET /v1/audit/export?from_seq=&to_seq=: every event
// in store order as NDJSON, written as it is read (constant memory). Once
// the first line is out, an error can only end the stream early (it is
// logged); a client can compare the line count with the store's count.
func HandleExport(x EventExporter, log *slog.Logger) http.HandlerFunc {
	log = orDiscard(log)
	return func(w http.ResponseWriter, r *http.Request) {
		p := newParams(r, "from_seq", "to_seq")
		from := uint64(p.intIn("from_seq", 1, 1, maxInt64))
		to := uint64(p.intIn("to_seq", 0, 1, maxInt64))
		if to != 0 && to < from {
			p.set("to_seq", "must not be below from_seq")
		}
		if err := p.err(); err != nil {
			httpx.Fail(w, r, log, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		flusher, _ := w.(http.Flusher)
		n := 0
		err := x.Export(r.Context(), from, to, func(pos eventstore.Position, subject string, e eventstore.Envelope) error {
			n++
			if err := enc.Encode(exportLine{Shard: pos.Shard, Seq: pos.Seq, Subject: subject, Envelope: e}); err != nil {
				return err
			}
			if n%1000 == 0 && flusher != nil {
				flusher.Flush()
			}
			return nil
		})
		if err != nil && n == 0 {
			w.Header().Del("Content-Type")
			httpx.Fail(w, r, log, err)
			return
		}
		if err != nil {
			log.ErrorContext(r.Context(), "export ended early", "err", err, "lines", n)
		}
	}
}
