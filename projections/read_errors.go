package projections

import (
	"context"
	"net"

	"github.com/cockroachdb/errors"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orderengine/engine/domain"
)

// readErr wraps an error of a read-model query and marks the ones that mean
// the database is unreachable with domain.ErrUnavailable, so the query
// answers 503 rather than 500.
func readErr(err error, format string, args ...any) error {
	w := errors.WrapWithDepthf(1, err, format, args...)
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return errors.Mark(w, domain.ErrUnavailable)
	}
	return w
}
