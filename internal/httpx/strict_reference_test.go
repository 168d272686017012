package httpx

import (
	"bytes"
	"encoding/json"
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
	t, err = valueProblem(tok, t, path)
	if err != nil {
		return err
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
			field, ft, err := memberType(t, seen, path, key)
			if err != nil {
				return err
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
