// Package httpx is the HTTP edge shared by the command and query APIs:
// problem+json errors and the one table that maps error kinds to statuses,
// strict JSON decoding, and bearer-token authentication with roles.
package httpx

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/domain"
)

// Problem is an RFC 9457 problem document, with the engine's machine
// readable code and per-field errors.
type Problem struct {
	Type   string            `json:"type"`
	Title  string            `json:"title"`
	Status int               `json:"status"`
	Detail string            `json:"detail,omitempty"`
	Code   string            `json:"code"`
	Errors map[string]string `json:"errors,omitempty"`
	// RetryAfter, in seconds, is sent as the Retry-After header.
	RetryAfter int `json:"-"`
}

// Error makes a Problem usable as an error that carries its own status.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// NewProblem returns a problem with the given status, code and detail.
func NewProblem(status int, code, detail string) *Problem {
	return &Problem{Type: "https://orderengine.dev/problems/" + code, Title: http.StatusText(status), Status: status, Code: code, Detail: detail}
}

// kinds is the one table from error kinds (package domain's) to HTTP
// statuses and problem codes.
var kinds = []struct {
	err    error
	status int
	code   string
}{
	{domain.ErrValidation, http.StatusUnprocessableEntity, "validation_failed"},
	{domain.ErrNotFound, http.StatusNotFound, "not_found"},
	{domain.ErrInvalidTransition, http.StatusConflict, "invalid_transition"},
	{domain.ErrConflict, http.StatusConflict, "conflict"},
	{domain.ErrPreconditionFailed, http.StatusPreconditionFailed, "precondition_failed"},
	{domain.ErrIdempotencyKeyReused, http.StatusUnprocessableEntity, "idempotency_key_reused"},
	// Before ErrUnavailable, which it also matches.
	{domain.ErrOutcomeUnknown, http.StatusServiceUnavailable, "outcome_unknown"},
	{domain.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{domain.ErrBacklogFull, http.StatusServiceUnavailable, "reservation_backlog_full"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable"},
}

// ProblemFor turns any error into the problem the client gets. Internal
// errors are logged with their details and answered without them.
func ProblemFor(ctx context.Context, log *slog.Logger, err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	for _, k := range kinds {
		if !errors.Is(err, k.err) {
			continue
		}
		p := NewProblem(k.status, k.code, userMessage(err))
		var ve *domain.ValidationError
		if errors.As(err, &ve) {
			p.Errors = ve.Fields
			p.Detail = "the request has invalid fields"
		}
		if k.err == domain.ErrBacklogFull {
			// The engine's own choice, not a failure: nothing to log, and
			// the message (which partition, how far behind) is the user's.
			p.RetryAfter = 1
			return p
		}
		if k.status == http.StatusServiceUnavailable {
			p.RetryAfter = 1
			p.Detail = "a dependency is unavailable; nothing was written, retry later"
			if k.err == domain.ErrOutcomeUnknown {
				p.Detail = outcomeUnknownDetail
			}
			log.WarnContext(ctx, "dependency unavailable", "err", err)
		}
		return p
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// The caller went away (or the server is stopping) before the
		// answer was ready: nobody reads this answer and nothing is broken,
		// so it is no internal error. A command handed to the store before
		// that still completes; its Idempotency-Key tells the outcome.
		log.InfoContext(ctx, "request cancelled before its answer was ready", "err", err)
		p := NewProblem(http.StatusServiceUnavailable, "unavailable", "the request was cancelled before its answer was ready")
		p.RetryAfter = 1
		return p
	}
	log.ErrorContext(ctx, "internal error", "err", detailed(err))
	return NewProblem(http.StatusInternalServerError, "internal", "internal error")
}

// outcomeUnknownDetail tells a client whose command was sent to the event
// store but not acknowledged what it may and may not do next.
const outcomeUnknownDetail = "the event store was lost while this command was being stored: " +
	"it was applied entirely or not at all, and which is not known. " +
	"Retrying with the same Idempotency-Key is safe: it applies the command at most once " +
	"and answers with the first outcome. Without an Idempotency-Key a retry may apply it twice; " +
	"look the result up first (e.g. the customer's orders)"

// userMessage is the error's message without operator details; hints are
// appended because they are written for users.
func userMessage(err error) string {
	msg := err.Error()
	for _, h := range errors.GetAllHints(err) {
		msg += " (" + h + ")"
	}
	return msg
}

// detailed renders an error with its details and stack for the log.
func detailed(err error) string { return errors.FlattenDetails(err) + " " + err.Error() }

// WriteProblem sends p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", itoa(p.RetryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Fail writes the problem for err.
func Fail(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	WriteProblem(w, ProblemFor(r.Context(), log, err))
}

// WriteJSON sends v with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
