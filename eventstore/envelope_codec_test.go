package eventstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/engine/eventstore"
)

// decodeLikeEncodingJSON is what DecodeEnvelope must give: encoding/json's
// reading of b, and the same refusal of an envelope without type,
// aggregate or version.
func decodeLikeEncodingJSON(b []byte) (eventstore.Envelope, error) {
	var e eventstore.Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return eventstore.Envelope{}, err
	}
	if e.Type == "" || e.AggregateID == "" || e.Version == 0 {
		return eventstore.Envelope{}, errors.New("missing type, aggregate or version")
	}
	return e, nil
}

// TestDecodeEnvelopeReadsWhatEncodingJSONReads takes an envelope as the
// engine stores it and changes one thing at a time, towards what the
// hand-written reader takes itself and what it must leave to encoding/json
// or refuse: the answer is always encoding/json's.
func TestDecodeEnvelopeReadsWhatEncodingJSONReads(t *testing.T) {
	e := benchEnvelope()
	e.Seal("")
	stored, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	base := string(stored)
	cases := map[string]string{
		"as stored":                    base,
		"spaced":                       strings.NewReplacer(`,"`, " ,\n\t\"", `":`, `" : `).Replace(base),
		"keys reordered":               `{"version":1,"type":"X","aggregate_id":"a","data":{}}`,
		"unknown key":                  strings.Replace(base, `{"type"`, `{"extra":1,"type"`, 1),
		"case-folded key":              strings.Replace(base, `"type"`, `"TYPE"`, 1),
		"escaped key":                  strings.Replace(base, `"type"`, `"typ\u0065"`, 1),
		"duplicate key":                strings.Replace(base, `{"type":"OrderPlaced"`, `{"type":"A","type":"B"`, 1),
		"escaped value":                strings.Replace(base, `"req-42"`, `"req\n42"`, 1),
		"unicode value":                strings.Replace(base, `"req-42"`, `"réq-42"`, 1),
		"invalid utf-8 value":          strings.Replace(base, `"req-42"`, "\"r\xffq\"", 1),
		"raw control in value":         strings.Replace(base, `"req-42"`, "\"r\x01q\"", 1),
		"leading zero version":         strings.Replace(base, `"version":1`, `"version":01`, 1),
		"negative version":             strings.Replace(base, `"version":1`, `"version":-1`, 1),
		"fraction version":             strings.Replace(base, `"version":1`, `"version":1.0`, 1),
		"exponent version":             strings.Replace(base, `"version":1`, `"version":1e0`, 1),
		"huge version":                 strings.Replace(base, `"version":1`, `"version":18446744073709551615`, 1),
		"overflowing version":          strings.Replace(base, `"version":1`, `"version":18446744073709551616`, 1),
		"string version":               strings.Replace(base, `"version":1`, `"version":"1"`, 1),
		"null version":                 strings.Replace(base, `"version":1`, `"version":null`, 1),
		"negative zero schema":         strings.Replace(base, `"schema_version":1`, `"schema_version":-0`, 1),
		"negative schema":              strings.Replace(base, `"schema_version":1`, `"schema_version":-7`, 1),
		"time in a zone":               strings.Replace(base, `Z"`, `+02:00"`, 1),
		"time not RFC 3339":            strings.Replace(base, `"2026-11-30T`, `"2026-11-30 `, 1),
		"null time":                    strings.Replace(base, `"occurred_at":"2026-11-30T09:00:00.123456789Z"`, `"occurred_at":null`, 1),
		"null data":                    strings.Replace(base, `"data":{`, `"data":null,"x":{`, 1),
		"data array":                   `{"type":"X","aggregate_id":"a","version":1,"data":[1,2]}`,
		"data every token":             `{"type":"X","aggregate_id":"a","version":1,"data":{"a":[true,false,null,-0.5e+3,"\u00e9\n",{}],"b":{ }}}`,
		"data bad escape":              `{"type":"X","aggregate_id":"a","version":1,"data":{"a":"\x"}}`,
		"data short unicode escape":    `{"type":"X","aggregate_id":"a","version":1,"data":{"a":"\u00e"}}`,
		"data bad number":              `{"type":"X","aggregate_id":"a","version":1,"data":{"a":01}}`,
		"data bare fraction":           `{"type":"X","aggregate_id":"a","version":1,"data":{"a":1.}}`,
		"data trailing comma":          `{"type":"X","aggregate_id":"a","version":1,"data":{"a":1,}}`,
		"data unquoted key":            `{"type":"X","aggregate_id":"a","version":1,"data":{a:1}}`,
		"data deep":                    `{"type":"X","aggregate_id":"a","version":1,"data":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`,
		"data truncated":               `{"type":"X","aggregate_id":"a","version":1,"data":{"a":[1,2}}`,
		"trailing comma":               strings.TrimSuffix(base, "}") + ",}",
		"trailing data":                base + "x",
		"trailing space":               base + " \n",
		"empty object":                 `{}`,
		"missing type":                 strings.Replace(base, `"type":"OrderPlaced",`, ``, 1),
		"not an object":                `["type"]`,
		"truncated":                    base[:len(base)/2],
		"empty":                        ``,
		"aggregate id with html chars": strings.Replace(base, `"req-42"`, `"<&>"`, 1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := eventstore.DecodeEnvelope([]byte(in))
			want, wantErr := decodeLikeEncodingJSON([]byte(in))
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("DecodeEnvelope says %v, encoding/json %v", err, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeEnvelope gives %+v, encoding/json %+v", got, want)
			}
		})
	}
}

// TestEncodeWritesWhatEncodingJSONWrites checks the hand-written encoder
// against encoding/json on the fields it must leave to it.
func TestEncodeWritesWhatEncodingJSONWrites(t *testing.T) {
	base := benchEnvelope()
	base.Seal("")
	cases := map[string]func(*eventstore.Envelope){
		"as stored":              func(*eventstore.Envelope) {},
		"no optional ids":        func(e *eventstore.Envelope) { e.CommandID, e.CausationID, e.CorrelationID = "", "", "" },
		"html in an id":          func(e *eventstore.Envelope) { e.CausationID = "a<b>&c" },
		"unicode in an id":       func(e *eventstore.Envelope) { e.CausationID = "réq\u2028" },
		"invalid utf-8 in an id": func(e *eventstore.Envelope) { e.CausationID = "r\xffq" },
		"quote in an id":         func(e *eventstore.Envelope) { e.AggregateID = `a"b\c` },
		"html in data":           func(e *eventstore.Envelope) { e.Data = json.RawMessage(`{"note":"<b>"}`) },
		"line separator in data": func(e *eventstore.Envelope) { e.Data = json.RawMessage("{\"note\":\"a\u2028b\"}") },
		"spaced data":            func(e *eventstore.Envelope) { e.Data = json.RawMessage(`{ "a" : 1 }`) },
		"nil data":               func(e *eventstore.Envelope) { e.Data = nil },
		"a zone":                 func(e *eventstore.Envelope) { e.OccurredAt = e.OccurredAt.In(time.FixedZone("x", 3600)) },
		"a zone with seconds":    func(e *eventstore.Envelope) { e.OccurredAt = e.OccurredAt.In(time.FixedZone("x", 3601)) },
		"year 10000":             func(e *eventstore.Envelope) { e.OccurredAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"zero time":              func(e *eventstore.Envelope) { e.OccurredAt = time.Time{} },
		"negative schema":        func(e *eventstore.Envelope) { e.SchemaVersion = -3 },
		"largest version":        func(e *eventstore.Envelope) { e.Version = 1<<64 - 1 },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			e := base
			change(&e)
			got, err := e.Encode()
			want, wantErr := json.Marshal(e)
			if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("Encode gives %s (%v), encoding/json %s (%v)", got, err, want, wantErr)
			}
		})
	}
}
