package httpx

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/cockroachdb/errors"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// ReadBody checks the content type and reads at most MaxBody bytes. It
// returns a 415 problem for a body that is not application/json and a 413
// problem for one that is too large.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" || (params["charset"] != "" && !equalFold(params["charset"], "utf-8")) {
		return nil, NewProblem(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
	}
	if r.ContentLength > MaxBody {
		return nil, NewProblem(http.StatusRequestEntityTooLarge, "body_too_large", "the body must not exceed 1 MiB")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, NewProblem(http.StatusRequestEntityTooLarge, "body_too_large", "the body must not exceed 1 MiB")
		}
		return nil, NewProblem(http.StatusBadRequest, "unreadable_body", "the body could not be read")
	}
	return body, nil
}

// Decode parses body as exactly one JSON value of type T, refusing a body
// that is not UTF-8, unknown fields (names are case-sensitive), duplicate
// keys, null for a field that cannot be null and wrong types with a 400
// problem that names the offending field.
func Decode[T any](body []byte) (T, error) {
	var v T
	// JSON text is UTF-8 (RFC 8259); encoding/json would silently turn
	// each invalid byte inside a string into U+FFFD, so the engine would
	// store text the client never sent.
	if !utf8.Valid(body) {
		return v, NewProblem(http.StatusBadRequest, "malformed_json", "the body must be UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// The walk finds the same value and names it by its path.
			if p := checkKeys(body, reflect.TypeOf(v)); p != nil {
				var zero T
				return zero, p
			}
		}
		return v, malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return v, NewProblem(http.StatusBadRequest, "malformed_json", "the body must hold exactly one JSON value")
	}
	if err := checkKeys(body, reflect.TypeOf(v)); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

func malformed(err error) *Problem {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		// Never Go's type names: they mean nothing to a client.
		if te.Field == "" {
			return NewProblem(http.StatusBadRequest, "malformed_json", "the body must be a JSON "+jsonKind(te.Type))
		}
		return keyProblem(te.Field, "must be a JSON "+jsonKind(te.Type))
	case errors.As(err, &se):
		return NewProblem(http.StatusBadRequest, "malformed_json", "invalid JSON at offset "+strconv.FormatInt(se.Offset, 10))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return NewProblem(http.StatusBadRequest, "malformed_json", "the body is empty or truncated")
	}
	// encoding/json reports unknown fields only as text, with the name.
	return NewProblem(http.StatusBadRequest, "malformed_json", clip(err.Error()))
}

// maxEcho bounds what a problem repeats of the request, such as a field
// name, so that a megabyte-long key does not come back as a megabyte-long
// problem.
const maxEcho = 200

// clip shortens s to at most maxEcho bytes, cutting between characters.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

func itoa(n int) string { return strconv.Itoa(n) }
