package eventstore

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/errors"
)

// The envelope's JSON is written and read by hand on the hot paths: every
// event is encoded once and decoded by every reader (projection, feed,
// saga, loads), and encoding/json took 5 µs to encode and 13 µs to decode
// one (BenchmarkEncodeEnvelope, BenchmarkDecodeEnvelope), 12–14% of a
// loaded engine's CPU. Both hand-written forms take only the shape
// encoding/json itself writes and fall back to encoding/json for anything
// else, so the bytes stored and the envelopes read are exactly what
// encoding/json would give (FuzzEnvelopeCodec compares them).

// Encode returns the envelope as stored: encoding/json's encoding of it,
// byte for byte.
func (e *Envelope) Encode() ([]byte, error) {
	if b, ok := e.appendFast(make([]byte, 0, 512+len(e.Data))); ok {
		return b, nil
	}
	b, err := json.Marshal(e)
	return b, errors.Wrap(err, "encode envelope")
}

// appendFast appends the envelope's JSON when every field is in the form
// encoding/json writes unchanged: plain printable ASCII strings, compact
// HTML-safe data, a time it can encode. ok is false otherwise, and then b
// is to be discarded.
func (e *Envelope) appendFast(b []byte) (_ []byte, ok bool) {
	_, offset := e.OccurredAt.Zone()
	if y := e.OccurredAt.Year(); y < 0 || y > 9999 || offset%60 != 0 || !compactSafe(e.Data) {
		return nil, false
	}
	field := func(key string, s string, omitEmpty bool) {
		if !ok || (omitEmpty && s == "") {
			return
		}
		b = append(b, key...)
		b = append(b, '"')
		ok = plainString(s)
		b = append(b, s...)
		b = append(b, '"')
	}
	ok = true
	field(`{"type":`, e.Type, false)
	b = append(b, `,"schema_version":`...)
	b = strconv.AppendInt(b, int64(e.SchemaVersion), 10)
	field(`,"aggregate_type":`, e.AggregateType, false)
	field(`,"aggregate_id":`, e.AggregateID, false)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, e.Version, 10)
	b = append(b, `,"occurred_at":"`...)
	b = e.OccurredAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	field(`,"command_id":`, e.CommandID, true)
	field(`,"causation_id":`, e.CausationID, true)
	field(`,"correlation_id":`, e.CorrelationID, true)
	b = append(b, `,"data":`...)
	b = append(b, e.Data...)
	field(`,"prev_hash":`, e.PrevHash, false)
	field(`,"hash":`, e.Hash, false)
	return append(b, '}'), ok
}

// plainString says whether encoding/json writes s as it is between quotes:
// printable ASCII without quote, backslash or the HTML-escaped <, >, &.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// compactSafe says whether encoding/json writes data, a raw message, as it
// is: one valid object with no whitespace between tokens and none of the
// bytes it escapes (<, >, &, and the first byte of U+2028 and U+2029).
func compactSafe(data []byte) bool {
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	var sc scanner
	end, ok := sc.value(data, 0, 0)
	if !ok || end != len(data) || sc.spaced {
		return false
	}
	for _, c := range data {
		if c == '<' || c == '>' || c == '&' || c == 0xe2 {
			return false
		}
	}
	return true
}

// decodeEnvelopeFast parses b when it is an object of the envelope's own
// keys (any order, any whitespace) whose strings have no escapes, whose
// numbers are plain integers and whose data is an object. ok is false for
// anything else, valid or not, which encoding/json then decides.
func decodeEnvelopeFast(b []byte) (e Envelope, ok bool) {
	var sc scanner
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return Envelope{}, false
	}
	end, ok := sc.list(b, i+1, '}', func(i int) (int, bool) { return e.member(b, i) })
	if !ok || skipSpace(b, end) != len(b) {
		return Envelope{}, false
	}
	return e, true
}

// member reads the key and value at b[i] into e, and returns the end of
// the value; ok is false for a key or value decodeEnvelopeFast leaves to
// encoding/json.
func (e *Envelope) member(b []byte, i int) (end int, ok bool) {
	key, next, ok := plainQuoted(b, i)
	if !ok {
		return 0, false
	}
	i = skipSpace(b, next)
	if i >= len(b) || b[i] != ':' {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i >= len(b) {
		return 0, false
	}
	switch string(key) {
	case "schema_version":
		n, next, ok := plainInt(b, i, true)
		if !ok || int64(int(n)) != n {
			return 0, false
		}
		e.SchemaVersion = int(n)
		return next, true
	case "version":
		n, next, ok := plainInt(b, i, false)
		if !ok {
			return 0, false
		}
		e.Version = uint64(n)
		return next, true
	case "occurred_at":
		_, next, ok := plainQuoted(b, i)
		if !ok || e.OccurredAt.UnmarshalJSON(b[i:next]) != nil {
			return 0, false
		}
		return next, true
	case "data":
		var sc scanner
		if b[i] != '{' {
			return 0, false
		}
		end, ok := sc.value(b, i, 0)
		if !ok {
			return 0, false
		}
		e.Data = append(json.RawMessage(nil), b[i:end]...)
		return end, true
	}
	raw, next, ok := plainQuoted(b, i)
	if !ok {
		return 0, false
	}
	s := string(raw)
	switch string(key) {
	case "type":
		e.Type = s
	case "aggregate_type":
		e.AggregateType = s
	case "aggregate_id":
		e.AggregateID = s
	case "command_id":
		e.CommandID = s
	case "causation_id":
		e.CausationID = s
	case "correlation_id":
		e.CorrelationID = s
	case "prev_hash":
		e.PrevHash = s
	case "hash":
		e.Hash = s
	default:
		return 0, false
	}
	return next, true
}

// plainQuoted reads the string at b[i] when it has no escape and no control
// character and is valid UTF-8, which encoding/json would read unchanged:
// s is its content, next the index after its closing quote.
func plainQuoted(b []byte, i int) (s []byte, next int, ok bool) {
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

// plainInt reads the integer at b[i] when it has no fraction and no
// exponent and fits 63 bits; negative only if signed.
func plainInt(b []byte, i int, signed bool) (n int64, next int, ok bool) {
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

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanner checks one JSON value as RFC 8259 and encoding/json define it,
// nested at most maxDepth deep (deeper is "not sure", not invalid).
type scanner struct {
	spaced bool // whitespace was seen between tokens
}

const maxDepth = 64

// value returns the end of the valid value at b[i], or ok false.
func (sc *scanner) value(b []byte, i, depth int) (end int, ok bool) {
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

func (sc *scanner) space(b []byte, i int) int {
	j := skipSpace(b, i)
	if j != i {
		sc.spaced = true
	}
	return j
}

func (sc *scanner) object(b []byte, i, depth int) (int, bool) {
	return sc.list(b, i, '}', func(i int) (int, bool) {
		end, ok := sc.str(b, i)
		if !ok {
			return 0, false
		}
		i = sc.space(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		return sc.value(b, sc.space(b, i+1), depth)
	})
}

func (sc *scanner) array(b []byte, i, depth int) (int, bool) {
	return sc.list(b, i, ']', func(i int) (int, bool) { return sc.value(b, i, depth) })
}

// list checks the members of an object or the elements of an array, each
// with item, from after the opening to the closing byte, and returns the
// end of the closing byte.
func (sc *scanner) list(b []byte, i int, closing byte, item func(int) (int, bool)) (int, bool) {
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
func (sc *scanner) str(b []byte, i int) (int, bool) {
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
