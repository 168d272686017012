package queries

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/google/uuid"

	"github.com/orderengine/engine/domain"
)

// Cursors are opaque to clients: base64url (no padding) of a version byte
// and the sort key of the last row of the previous page. The version lets
// the layout change without misreading cursors clients still hold.
const (
	orderCursorV     byte = 1
	inventoryCursorV byte = 1
)

var errBadCursor = errors.New("malformed cursor")

// OrderCursor is the sort key of an order in the newest-first listing.
type OrderCursor struct {
	CreatedAt time.Time
	OrderID   string
}

// encodeOrderCursor packs the key as version, Unix microseconds (the
// precision of timestamptz) and the 16 bytes of the UUID.
func encodeOrderCursor(c OrderCursor) (string, error) {
	id, err := uuid.Parse(c.OrderID)
	if err != nil {
		// Rows come from a uuid column, so this cannot happen.
		return "", errors.AssertionFailedf("order id %q from the read model is not a UUID", c.OrderID)
	}
	b := make([]byte, 0, 25)
	b = append(b, orderCursorV)
	b = binary.BigEndian.AppendUint64(b, uint64(c.CreatedAt.UnixMicro()))
	b = append(b, id[:]...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeOrderCursor returns errBadCursor for anything encodeOrderCursor
// cannot have produced.
func decodeOrderCursor(s string) (OrderCursor, error) {
	b, err := decodeCursor(s)
	if err != nil || len(b) != 25 || b[0] != orderCursorV {
		return OrderCursor{}, errBadCursor
	}
	us := int64(binary.BigEndian.Uint64(b[1:9]))
	id, err := uuid.FromBytes(b[9:])
	if err != nil {
		return OrderCursor{}, errBadCursor
	}
	at := time.UnixMicro(us).UTC()
	// Postgres refuses timestamps far outside this range with an error.
	if at.Year() < 1 || at.Year() > 9999 {
		return OrderCursor{}, errBadCursor
	}
	return OrderCursor{CreatedAt: at, OrderID: id.String()}, nil
}

// decodeCursor undoes the base64 of a cursor. The decoder skips CR and LF
// anywhere in its input, so a cursor would have more than one spelling:
// refuse them.
func decodeCursor(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errBadCursor
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// encodeInventoryCursor packs the last SKU of a page.
func encodeInventoryCursor(sku string) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{inventoryCursorV}, sku...))
}

// decodeInventoryCursor returns errBadCursor unless s holds a valid SKU.
func decodeInventoryCursor(s string) (string, error) {
	b, err := decodeCursor(s)
	if err != nil || len(b) < 2 || b[0] != inventoryCursorV || !domain.ValidSKU(string(b[1:])) {
		return "", errBadCursor
	}
	return string(b[1:]), nil
}
