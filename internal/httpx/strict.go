package httpx

import (
	"bytes"
	"encoding"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cockroachdb/errors"
)

// checkKeys walks the JSON in data alongside type t and refuses any object
// key that is not exactly a field's JSON name, any key given twice, and
// null where t has no nil for it. encoding/json alone matches names
// case-insensitively and lets the last duplicate win, so {"ON_HAND": 2}
// would pass for on_hand and two spellings of one field could mean
// different things to a proxy and to the engine; and it decodes null as
// "leave the zero value", so {"on_hand": null}, or a body of just null,
// would set the stock to 0.
func checkKeys(data []byte, t reflect.Type) error {
	w := keyWalker{data: data}
	return w.walk(t, "")
}

// keyWalker reads JSON that the real decode has already found valid, byte
// by byte: a json.Decoder's tokens cost a body as much as the decode
// itself (4% of a flash sale's CPU). On anything it does not expect it
// stops and says nothing, as syntax errors are the real decode's to report.
type keyWalker struct {
	data []byte
	i    int
}

func (w *keyWalker) walk(t reflect.Type, path string) error {
	w.space()
	if w.i >= len(w.data) {
		return nil
	}
	tok, ok := w.token()
	if !ok {
		return nil
	}
	t, err := valueProblem(tok, t, path)
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for w.more('}') {
			key, ok := w.key()
			if !ok {
				return nil
			}
			field, ft, err := memberType(t, seen, path, key)
			if err != nil {
				return err
			}
			if err := w.walk(ft, field); err != nil {
				return err
			}
		}
		if t != nil && t.Kind() == reflect.Struct {
			if err := requiredPresent(t, seen, path); err != nil {
				return err
			}
		}
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i := 0; w.more(']'); i++ {
			if err := w.walk(et, path+"["+itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

// valueProblem checks the value starting with tok against t: a null where
// t has no nil, or a JSON type t cannot take, is the problem. Otherwise it
// returns the type to walk the value's inside along (nil: anything goes).
func valueProblem(tok json.Token, t reflect.Type, path string) (reflect.Type, error) {
	if tok == nil && t != nil && !nullable(t) {
		if path == "" {
			return nil, NewProblem(http.StatusBadRequest, "malformed_json", "the body must be a JSON "+jsonKind(t)+", not null")
		}
		return nil, keyProblem(path, "must be a JSON "+jsonKind(t)+", not null")
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Kind() == reflect.Interface || decodesItself(t)) {
		t = nil // any JSON may be right; the real decode tells
	}
	if t != nil {
		if msg := mismatch(tok, t); msg != "" {
			if path == "" {
				return nil, NewProblem(http.StatusBadRequest, "malformed_json", "the body must be a JSON "+jsonKind(t))
			}
			return nil, keyProblem(path, msg)
		}
	}
	return t, nil
}

// memberType checks key, a key of an object walked along t, and returns
// its path and the type to walk its value along: a key given twice, or
// one that names no field of a struct, is the problem.
func memberType(t reflect.Type, seen map[string]bool, path, key string) (string, reflect.Type, error) {
	field := path + key
	if path != "" {
		field = path + "." + key
	}
	if seen[key] {
		return "", nil, keyProblem(field, "appears twice")
	}
	seen[key] = true
	switch {
	case t != nil && t.Kind() == reflect.Struct:
		f, ok := fieldByJSONName(t, key)
		if !ok {
			return "", nil, keyProblem(field, "is not a field of this request (names are case-sensitive)")
		}
		return field, f, nil
	case t != nil && t.Kind() == reflect.Map:
		return field, t.Elem(), nil
	}
	return field, nil, nil
}

// token reads the value at w.i as far as mismatch needs it: an object or
// array is its opening delimiter (the caller reads the rest), a scalar is
// read whole; a string's content is not needed, only that it is one.
func (w *keyWalker) token() (json.Token, bool) {
	switch c := w.data[w.i]; {
	case c == '{' || c == '[':
		w.i++
		return json.Delim(c), true
	case c == '"':
		_, ok := w.str()
		return "", ok
	case c == 't':
		return true, w.literal("true")
	case c == 'f':
		return false, w.literal("false")
	case c == 'n':
		return nil, w.literal("null")
	}
	start := w.i
	for w.i < len(w.data) && strings.IndexByte("+-.eE0123456789", w.data[w.i]) >= 0 {
		w.i++
	}
	return json.Number(w.data[start:w.i]), w.i > start
}

// more skips a comma or the closing delimiter and says whether a member or
// element follows.
func (w *keyWalker) more(closing byte) bool {
	w.space()
	if w.i < len(w.data) && w.data[w.i] == ',' {
		w.i++
		w.space()
	}
	if w.i >= len(w.data) {
		return false
	}
	if w.data[w.i] == closing {
		w.i++
		return false
	}
	return true
}

// key reads an object key and its colon.
func (w *keyWalker) key() (string, bool) {
	raw, ok := w.str()
	if !ok {
		return "", false
	}
	key := string(raw[1 : len(raw)-1])
	// An escape, or a byte that is not UTF-8 (which the decoder reads as
	// U+FFFD), is read as the decoder reads it.
	if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		if json.Unmarshal(raw, &key) != nil {
			return "", false
		}
	}
	w.space()
	if w.i >= len(w.data) || w.data[w.i] != ':' {
		return "", false
	}
	w.i++
	return key, true
}

// str reads the string at w.i, quotes included.
func (w *keyWalker) str() ([]byte, bool) {
	start := w.i
	for j := start + 1; j < len(w.data); j++ {
		switch w.data[j] {
		case '\\':
			j++
		case '"':
			w.i = j + 1
			return w.data[start:w.i], true
		}
	}
	return nil, false
}

func (w *keyWalker) literal(lit string) bool {
	if !bytes.HasPrefix(w.data[w.i:], []byte(lit)) {
		return false
	}
	w.i += len(lit)
	return true
}

func (w *keyWalker) space() {
	for w.i < len(w.data) && strings.IndexByte(" \t\n\r", w.data[w.i]) >= 0 {
		w.i++
	}
}

// requiredPresent fails with a 422 naming every field of t tagged
// `required:"true"` that the object did not have. It is for fields whose
// zero value is valid, so that leaving one out cannot mean it: a missing
// on_hand must not set the stock to 0, nor a missing price give a line away.
func requiredPresent(t reflect.Type, seen map[string]bool, path string) error {
	missing := map[string]string{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("required") != "true" {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !seen[name] {
			if path != "" {
				name = path + "." + name
			}
			missing[name] = "is required"
		}
	}
	if len(missing) == 0 {
		return nil
	}
	p := NewProblem(http.StatusUnprocessableEntity, "validation_failed", "required fields are missing")
	p.Errors = missing
	return p
}

// nullable reports whether a JSON null has a meaning for t: nil. A null
// slice is left to validation, which names the empty field (an order
// without lines is a 422 like any other missing line).
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return true
	}
	return false
}

// jsonKind names the JSON type that decodes into a non-nullable t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Array, reflect.Slice:
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	default:
		return "number"
	}
}

// fieldByJSONName finds the exported field whose JSON name is exactly name.
func fieldByJSONName(t reflect.Type, name string) (reflect.Type, bool) {
	fields, ok := jsonFields.Load(t)
	if !ok {
		byName := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "-" {
				continue
			}
			if tag == "" {
				tag = f.Name
			}
			if _, dup := byName[tag]; !dup {
				byName[tag] = f.Type // the first field of a name, as encoding/json
			}
		}
		fields, _ = jsonFields.LoadOrStore(t, byName)
	}
	ft, ok := fields.(map[string]reflect.Type)[name]
	return ft, ok
}

// jsonFields and selfDecoding remember, per type, what the walk asks of
// reflection for every key and value: a body's walk costs no more than
// its decode.
var jsonFields, selfDecoding sync.Map

func keyProblem(field, msg string) *Problem {
	field = clip(field)
	p := NewProblem(http.StatusBadRequest, "malformed_json", "field "+field+" "+msg)
	p.Errors = map[string]string{field: msg}
	return p
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// decodesItself reports whether t (or *t) decodes its own JSON, so that
// its Go kind says nothing of the JSON it accepts (time.Time is a struct
// read from a string).
func decodesItself(t reflect.Type) bool {
	if v, ok := selfDecoding.Load(t); ok {
		return v.(bool)
	}
	pt := reflect.PointerTo(t)
	self := t.Implements(jsonUnmarshaler) || pt.Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || pt.Implements(textUnmarshaler)
	selfDecoding.Store(t, self)
	return self
}

// mismatch says, in the words of JSON, why the value starting with tok
// cannot decode into t, or "" when it can. encoding/json would say it too,
// but in Go's words ("cannot unmarshal string into Go struct field
// Line.lines.qty of type int64"), naming internal types and losing the
// index of the line; a client needs "lines[0].qty": "must be a JSON number".
func mismatch(tok json.Token, t reflect.Type) string {
	want := "must be a JSON " + jsonKind(t)
	switch v := tok.(type) {
	case json.Delim:
		switch {
		case v == '{' && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map):
			return ""
		case v == '[' && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			return ""
		}
		return want
	case string:
		// []byte is read from a base64 string.
		if t.Kind() == reflect.String || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8) {
			return ""
		}
		return want
	case bool:
		if t.Kind() == reflect.Bool {
			return ""
		}
		return want
	case json.Number:
		return numberMismatch(string(v), t, want)
	}
	return ""
}

// numberMismatch checks that the JSON number s fits t.
func numberMismatch(s string, t reflect.Type, want string) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(s, 10, t.Bits()); err != nil {
			return integerProblem(s, err)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseUint(s, 10, t.Bits()); err != nil {
			return integerProblem(s, err)
		}
	case reflect.Float32, reflect.Float64:
		if _, err := strconv.ParseFloat(s, t.Bits()); err != nil {
			return "is out of range"
		}
	default:
		return want
	}
	return ""
}

// integerProblem tells a fraction (or an exponent) and a negative number
// for an unsigned field from a number too large.
func integerProblem(s string, err error) string {
	if errors.Is(err, strconv.ErrRange) {
		return "is out of range"
	}
	if strings.HasPrefix(s, "-") && !strings.ContainsAny(s, ".eE") {
		return "must not be negative"
	}
	return "must be a whole number"
}
