package eventstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/orderengine/engine/eventstore"
)

// FuzzDecodeEnvelope feeds arbitrary stored-message payloads to
// DecodeEnvelope and then, as a replay does, the envelope's type, schema
// version and data to the decoder of its aggregate's kind. Nothing may
// panic. What decodes must carry a type, an aggregate id and a version;
// its hash must be stable across an encode and decode; and sealing it must
// always produce a link that CheckLink accepts. The hand-written decoder
// and encoder must give exactly what encoding/json gives: the same
// envelope or the same refusal, the same bytes.
func FuzzDecodeEnvelope(f *testing.F) {
	orders := eventstore.NewOrderKind(time.Hour)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := eventstore.DecodeEnvelope(b)
		var want eventstore.Envelope
		wantErr := json.Unmarshal(b, &want)
		if wantErr == nil && (want.Type == "" || want.AggregateID == "" || want.Version == 0) {
			wantErr = errors.New("missing type, aggregate or version")
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: DecodeEnvelope says %v, encoding/json says %v", b, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(e, want) {
			t.Fatalf("%q: DecodeEnvelope gives %+v, encoding/json %+v", b, e, want)
		}
		if err != nil {
			if e.Type != "" || e.AggregateID != "" || e.Version != 0 || e.Data != nil {
				t.Fatalf("an error with an envelope: %+v, %v", e, err)
			}
			return
		}
		if e.Type == "" || e.AggregateID == "" || e.Version == 0 {
			t.Fatalf("decoded an envelope without type, aggregate or version: %+v", e)
		}
		if !json.Valid(b) {
			t.Fatalf("decoded an envelope from invalid JSON %q", b)
		}
		switch e.AggregateType {
		case orders.Name:
			_, _ = orders.Decode(e.Type, e.SchemaVersion, e.Data)
		case eventstore.SKUKind.Name:
			_, _ = eventstore.SKUKind.Decode(e.Type, e.SchemaVersion, e.Data)
		}
		_ = eventstore.CheckLink(nil, &e)

		hash := e.ComputeHash()
		again, err := json.Marshal(e)
		if err != nil {
			// Only data that is not JSON fails to encode, and data comes
			// from a JSON document.
			t.Fatalf("encode %+v: %v", e, err)
		}
		if fast, err := e.Encode(); err != nil || !bytes.Equal(fast, again) {
			t.Fatalf("Encode gives %s (%v), encoding/json %s", fast, err, again)
		}
		back, err := eventstore.DecodeEnvelope(again)
		if err != nil {
			t.Fatalf("%s does not decode again: %v", again, err)
		}
		// Encoding compacts data; the hash covers data as stored, so it
		// can only be the same when the data already was compact.
		if bytes.Equal(back.Data, e.Data) && back.ComputeHash() != hash {
			t.Fatalf("the hash of %s changed across encode and decode: %s", b, again)
		}

		prev := eventstore.Envelope{Version: e.Version - 1, Hash: "0123"}
		sealed := e
		if e.Version == 1 {
			sealed.Seal("")
			err = eventstore.CheckLink(nil, &sealed)
		} else {
			sealed.Seal(prev.Hash)
			err = eventstore.CheckLink(&prev, &sealed)
		}
		if err != nil {
			t.Fatalf("a sealed envelope does not link: %v: %+v", err, sealed)
		}
	})
}
