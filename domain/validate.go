package domain

import (
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits shared by the deciders and the HTTP layer, so a request the edge
// accepts is never refused by the domain for a different reason.
const (
	// MaxLines is the most lines one order may have.
	MaxLines = 100
	// MaxQty is the most units of one SKU an order line (and so one
	// reservation) may ask for.
	MaxQty = 10000
	// MaxUnitPriceCents bounds a line's unit price in minor units.
	MaxUnitPriceCents = 100_000_000
	// MaxStock bounds on_hand and the result of a restock, far below the
	// int64 range so that no sum of stock quantities can overflow.
	MaxStock = 1_000_000_000_000
	// MaxTextLen bounds, in bytes, the free-text fields payment_ref,
	// carrier, tracking_number and reason.
	MaxTextLen = 255
)

// maxTokenLen is the longest SKU or customer id: 1 leading character and
// up to 63 more.
const maxTokenLen = 64

// TokenRule is the message for a SKU or customer id that is not 1 to 64 of
// [A-Za-z0-9_-] starting with a letter or digit: one wording wherever the
// rule is checked.
const TokenRule = "must be 1 to 64 letters, digits, '_' or '-', starting with a letter or digit"

// ValidSKU reports whether s matches ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$.
// A SKU becomes a NATS subject token (inventory.<sku>), so '.', '*', '>'
// and white space must never pass: they would let a SKU address another
// subject. Hand-written rather than a regexp because it sits on the hot
// path of every reservation.
func ValidSKU(s string) bool {
	if len(s) == 0 || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidCustomerID reports whether s is a well-formed customer id; it
// follows the SKU pattern so customer ids are safe in subjects and keys
// too.
func ValidCustomerID(s string) bool {
	return ValidSKU(s)
}

// ValidOrderID reports whether s is a UUID in canonical lower-case text
// form (8-4-4-4-12 hex digits). Only one spelling is accepted so that one
// order can never live on two subjects.
func ValidOrderID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// checkText records a problem with a free-text field. Text must be valid
// UTF-8 made of graphic characters (letters, marks, numbers, punctuation,
// symbols and spaces): control and invisible format characters are
// refused because these strings reach dashboards, logs and carriers'
// systems, where they could hide or reorder what an operator reads.
// Required text must also contain something other than white space.
func checkText(fe *fieldErrors, field, s string, required bool) {
	switch {
	case s == "" && required:
		fe.add(field, "is required")
	case len(s) > MaxTextLen:
		fe.add(field, fmt.Sprintf("must be at most %d bytes", MaxTextLen))
	case !printable(s):
		fe.add(field, "must be printable text (valid UTF-8, no control characters)")
	case required && strings.TrimSpace(s) == "":
		fe.add(field, "must not be blank")
	}
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return false
		}
	}
	return true
}

// checkRange records msg for field when v is outside [lo, hi].
func checkRange(fe *fieldErrors, field string, v, lo, hi int64) {
	if v < lo || v > hi {
		fe.add(field, fmt.Sprintf("must be between %d and %d", lo, hi))
	}
}

// mulInt64 returns a*b and false when the product overflows int64.
func mulInt64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	// MinInt64 * -1 wraps to MinInt64 and the division check below cannot
	// see it, because MinInt64 / -1 wraps too.
	if (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return 0, false
	}
	p := a * b
	if p/b != a {
		return 0, false
	}
	return p, true
}

// addInt64 returns a+b and false when the sum overflows int64.
func addInt64(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
