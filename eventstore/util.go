package eventstore

import (
	"net"
	"strconv"

	"github.com/cockroachdb/errors"
)

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, errors.Wrapf(err, "parse listen address %q", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, errors.Wrapf(err, "parse port of %q", addr)
	}
	return host, port, nil
}
