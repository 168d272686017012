// Package plainjson reads and writes JSON in the plain shape encoding/json
// itself writes, without reflection: strings with no escapes, plain
// integers, compact objects. The hand-written codecs on the hot paths
// (the event envelope, the hot domain payloads) take only that shape and
// leave everything else to encoding/json, so what they read and write is
// exactly what encoding/json would; this package is what they share.
package plainjson

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// PlainString says whether encoding/json writes s as it is between quotes:
// printable ASCII without quote, backslash or the HTML-escaped <, >, &.
func PlainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// CompactSafe says whether encoding/json writes data, a raw message, as it
// is: one valid object with no whitespace between tokens and none of the
// bytes it escapes (<, >, &, and the first byte of U+2028 and U+2029).
func CompactSafe(data []byte) bool {
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	var sc Scanner
	end, ok := sc.Value(data, 0, 0)
	if !ok || end != len(data) || sc.Spaced {
		return false
	}
	for _, c := range data {
		if c == '<' || c == '>' || c == '&' || c == 0xe2 {
			return false
		}
	}
	return true
}

// Quoted reads the string at b[i] when it has no escape and no control
// character and is valid UTF-8, which encoding/json would read unchanged:
// s is its content, next the index after its closing quote.
func Quoted(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(b[i+1:j]) {
				return nil, 0, false
			}
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}

// Int reads the integer at b[i] when it has no fraction and no
// exponent and fits 63 bits; negative only if signed.
func Int(b []byte, i int, signed bool) (n int64, next int, ok bool) {
	j := i
	if signed && j < len(b) && b[j] == '-' {
		j++
	}
	start := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == start || j-start > 18 || (b[start] == '0' && j-start > 1) {
		return 0, 0, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(string(b[i:j]), 10, 64)
	return n, j, err == nil
}

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// Scanner checks one JSON value as RFC 8259 and encoding/json define it,
// nested at most maxDepth deep (deeper is "not sure", not invalid).
type Scanner struct {
	Spaced bool // whitespace was seen between tokens
}

const maxDepth = 64

// Value returns the end of the valid value at b[i], or ok false.
func (sc *Scanner) Value(b []byte, i, depth int) (end int, ok bool) {
	if i >= len(b) || depth > maxDepth {
		return 0, false
	}
	switch c := b[i]; {
	case c == '{':
		return sc.object(b, i+1, depth+1)
	case c == '[':
		return sc.array(b, i+1, depth+1)
	case c == '"':
		return sc.str(b, i)
	case c == '-' || (c >= '0' && c <= '9'):
		return number(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return 0, false
}

func (sc *Scanner) space(b []byte, i int) int {
	j := SkipSpace(b, i)
	if j != i {
		sc.Spaced = true
	}
	return j
}

func (sc *Scanner) object(b []byte, i, depth int) (int, bool) {
	return sc.List(b, i, '}', func(i int) (int, bool) {
		end, ok := sc.str(b, i)
		if !ok {
			return 0, false
		}
		i = sc.space(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		return sc.Value(b, sc.space(b, i+1), depth)
	})
}

func (sc *Scanner) array(b []byte, i, depth int) (int, bool) {
	return sc.List(b, i, ']', func(i int) (int, bool) { return sc.Value(b, i, depth) })
}

// List checks the members of an object or the elements of an array, each
// with item, from after the opening to the closing byte, and returns the
// end of the closing byte.
func (sc *Scanner) List(b []byte, i int, closing byte, item func(int) (int, bool)) (int, bool) {
	i = sc.space(b, i)
	if i < len(b) && b[i] == closing {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = item(i); !ok {
			return 0, false
		}
		i = sc.space(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = sc.space(b, i+1)
		case closing:
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// str checks the string at b[i]: no raw control characters, only the
// escapes JSON has. encoding/json does not check UTF-8 here.
func (sc *Scanner) str(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			j++
			if j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return 0, false
				}
				for _, h := range b[j+1 : j+5] {
					if !isHex(h) {
						return 0, false
					}
				}
				j += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number checks -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
func number(b []byte, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i + 1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// Object reads the object at b[i] member by member: for each key that is
// a plain string (see Quoted) it calls member with the key and the index
// of its value, which returns the end of the value. ok is false when the
// object is not one member calls accept, and then encoding/json decides.
func Object(b []byte, i int, member func(key []byte, value int) (end int, ok bool)) (end int, ok bool) {
	var sc Scanner
	i = SkipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	return sc.List(b, i+1, '}', func(i int) (int, bool) {
		key, next, ok := Quoted(b, i)
		if !ok {
			return 0, false
		}
		i = SkipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = SkipSpace(b, i+1)
		if i >= len(b) {
			return 0, false
		}
		return member(key, i)
	})
}

// Bool reads the literal true or false at b[i].
func Bool(b []byte, i int) (v bool, next int, ok bool) {
	if next, ok := literal(b, i, "true"); ok {
		return true, next, true
	}
	next, ok = literal(b, i, "false")
	return false, next, ok
}

// Time reads the time at b[i] as encoding/json does (time.Time's
// UnmarshalJSON on the quoted string) when the string is plain.
func Time(b []byte, i int) (t time.Time, next int, ok bool) {
	_, next, ok = Quoted(b, i)
	if !ok || t.UnmarshalJSON(b[i:next]) != nil {
		return time.Time{}, 0, false
	}
	return t, next, true
}

// TimeWritable says whether encoding/json writes t as AppendTime does:
// it refuses years outside 0-9999, and RFC 3339 has no seconds in a zone
// offset.
func TimeWritable(t time.Time) bool {
	_, offset := t.Zone()
	y := t.Year()
	return y >= 0 && y <= 9999 && offset%60 == 0
}

// AppendTime appends t quoted, as encoding/json writes it when
// TimeWritable(t).
func AppendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
