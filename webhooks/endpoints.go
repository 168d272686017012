package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5"

	"github.com/orderengine/engine/domain"
	"github.com/orderengine/engine/feed"
)

// Endpoint is a registered webhook receiver. Its secret is never part of
// it: Register returns it once.
type Endpoint struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// EventTypes are the feed types delivered; empty means all.
	EventTypes  []string  `json:"event_types"`
	Description string    `json:"description"`
	Position    uint64    `json:"position"`
	CreatedAt   time.Time `json:"created_at"`
}

// wants reports whether the endpoint takes events of type typ.
func (e Endpoint) wants(typ string) bool {
	return len(e.EventTypes) == 0 || slices.Contains(e.EventTypes, typ)
}

// Registration is a request to register an endpoint.
type Registration struct {
	URL         string   `json:"url" required:"true"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description"`
	// FromStart delivers the whole feed from its first event; by default
	// an endpoint receives the events published after it was registered.
	FromStart bool `json:"from_start"`
}

// Valid returns the problems of r by field.
func (r Registration) Valid() map[string]string {
	bad := map[string]string{}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		bad["url"] = "must be an absolute http or https URL without user info"
	} else if len(r.URL) > 2048 {
		bad["url"] = "must not exceed 2048 characters"
	}
	for _, t := range r.EventTypes {
		if _, ok := feed.Types[t]; !ok {
			bad["event_types"] = "unknown event type " + t + "; see docs/feed.md"
			break
		}
	}
	if len(r.Description) > 500 {
		bad["description"] = "must not exceed 500 characters"
	}
	return bad
}

// DeadLetter is a delivery that failed every attempt (Parked false), or an
// event held behind such a one of the same order (Parked true).
type DeadLetter struct {
	ID         int64           `json:"id"`
	FeedSeq    uint64          `json:"feed_seq"`
	EventID    string          `json:"event_id"`
	EventType  string          `json:"event_type"`
	OrderID    string          `json:"order_id"`
	Attempts   int             `json:"attempts"`
	LastError  string          `json:"last_error"`
	Parked     bool            `json:"parked"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	Event      json.RawMessage `json:"event"`
	endpointID string
}

// newID returns a random endpoint id "wh_<hex>".
func newID() string { return "wh_" + randomHex(8) }

func newSecret() string { return "whsec_" + randomHex(32) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const endpointColumns = `id, url, event_types, description, position, created_at`

func scanEndpoint(row pgx.Row) (Endpoint, error) {
	var e Endpoint
	var pos int64
	err := row.Scan(&e.ID, &e.URL, &e.EventTypes, &e.Description, &pos, &e.CreatedAt)
	e.Position = uint64(pos)
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	return e, err
}

// insertEndpoint stores a new endpoint starting after feed sequence from.
func (s *Service) insertEndpoint(ctx context.Context, r Registration, from uint64) (Endpoint, string, error) {
	secret := newSecret()
	types := r.EventTypes
	if types == nil {
		types = []string{}
	}
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `INSERT INTO hooks.endpoints (id, url, secret, event_types, description, position)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+endpointColumns, newID(), r.URL, secret, types, r.Description, int64(from)))
	if err != nil {
		return Endpoint{}, "", errors.Wrap(err, "insert webhook endpoint")
	}
	return e, secret, nil
}

// List returns every endpoint, oldest first.
func (s *Service) List(ctx context.Context) ([]Endpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+endpointColumns+` FROM hooks.endpoints ORDER BY created_at, id`)
	if err != nil {
		return nil, errors.Wrap(err, "list webhook endpoints")
	}
	eps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Endpoint, error) { return scanEndpoint(r) })
	return eps, errors.Wrap(err, "list webhook endpoints")
}

// Get returns endpoint id; it fails with domain.ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (Endpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM hooks.endpoints WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Endpoint{}, errors.Mark(errors.Newf("no webhook endpoint %q", id), domain.ErrNotFound)
	}
	return e, errors.Wrap(err, "read webhook endpoint")
}

func (s *Service) secretOf(ctx context.Context, id string) (string, error) {
	var secret string
	err := s.pool.QueryRow(ctx, `SELECT secret FROM hooks.endpoints WHERE id = $1`, id).Scan(&secret)
	return secret, errors.Wrap(err, "read webhook secret")
}

// DeadLetters returns endpoint id's dead letters in feed order; it fails
// with domain.ErrNotFound for an unknown endpoint.
func (s *Service) DeadLetters(ctx context.Context, id string) ([]DeadLetter, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	return s.deadLetters(ctx, id)
}

func (s *Service) deadLetters(ctx context.Context, id string) ([]DeadLetter, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, feed_seq, event_id, event_type, order_id, attempts, last_error, parked, created_at, updated_at, body
FROM hooks.dead_letters WHERE endpoint_id = $1 ORDER BY feed_seq`, id)
	if err != nil {
		return nil, errors.Wrap(err, "list webhook dead letters")
	}
	dls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		var seq int64
		var body string
		err := r.Scan(&d.ID, &seq, &d.EventID, &d.EventType, &d.OrderID, &d.Attempts, &d.LastError, &d.Parked, &d.CreatedAt, &d.UpdatedAt, &body)
		d.FeedSeq, d.Event, d.endpointID = uint64(seq), json.RawMessage(body), id
		return d, err
	})
	return dls, errors.Wrap(err, "list webhook dead letters")
}
