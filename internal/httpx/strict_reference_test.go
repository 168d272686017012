package httpx

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
)

// checkKeysByTokens is the key walk as it was first written, on a
// json.Decoder's tokens: slower, and plainly right. The byte walk
// (checkKeys) must give exactly its answers.
func checkKeysByTokens(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walkTokens(dec, t, "")
}

func walkTokens(dec *json.Decoder, t reflect.Type, path string) error {
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
			if err := walkTokens(dec, ft, field); err != nil {
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
			if err := walkTokens(dec, et, path+"["+itoa(i)+"]"); err != nil {
				return err
			}
		}
		_, _ = dec.Token()
	}
	return nil
}
