package httpx

import (
	"bytes"
	"encoding"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"

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
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walk(dec, t, "")
}

func walk(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return nil // syntax errors are reported by the real decode
	}
	if tok == nil && t != nil && !nullable(t) {
		if path == "" {
			return NewProblem(http.StatusBadRequest, "malformed_json", "the body must be a JSON "+jsonKind(t)+", not null")
		}
		return keyProblem(path, "must be a JSON "+jsonKind(t)+", not null")
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
				return NewProblem(http.StatusBadRequest, "malformed_json", "the body must be a JSON "+jsonKind(t))
			}
			return keyProblem(path, msg)
		}
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil
			}
			key, _ := kt.(string)
			field := path + key
			if path != "" {
				field = path + "." + key
			}
			if seen[key] {
				return keyProblem(field, "appears twice")
			}
			seen[key] = true
			var ft reflect.Type
			if t != nil && t.Kind() == reflect.Struct {
				f, ok := fieldByJSONName(t, key)
				if !ok {
					return keyProblem(field, "is not a field of this request (names are case-sensitive)")
				}
				ft = f
			} else if t != nil && t.Kind() == reflect.Map {
				ft = t.Elem()
			}
			if err := walk(dec, ft, field); err != nil {
				return err
			}
		}
		_, _ = dec.Token()
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
		for i := 0; dec.More(); i++ {
			if err := walk(dec, et, path+"["+itoa(i)+"]"); err != nil {
				return err
			}
		}
		_, _ = dec.Token()
	}
	return nil
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
		if tag == name {
			return f.Type, true
		}
	}
	return nil, false
}

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
	pt := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshaler) || pt.Implements(jsonUnmarshaler) ||
		t.Implements(textUnmarshaler) || pt.Implements(textUnmarshaler)
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
