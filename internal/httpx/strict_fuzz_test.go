package httpx

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// strictSample has a field of every shape the key walk treats apart.
type strictSample struct {
	Name    string            `json:"name"`
	Qty     int64             `json:"qty" required:"true"`
	Count   uint8             `json:"count"`
	Ratio   float64           `json:"ratio"`
	Ok      bool              `json:"ok"`
	Note    *string           `json:"note"`
	At      time.Time         `json:"at"`
	Any     any               `json:"any"`
	Raw     []byte            `json:"raw"`
	Lines   []strictLine      `json:"lines"`
	Tags    map[string]int    `json:"tags"`
	Nested  *strictLine       `json:"nested"`
	Fixed   [2]int            `json:"fixed"`
	Skipped string            `json:"-"`
	Plain   string            // no tag: named by its Go name
	Deep    map[string][]bool `json:"deep"`
}

type strictLine struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty" required:"true"`
}

// strictTypes are the types every body is walked along.
var strictTypes = []reflect.Type{
	reflect.TypeFor[strictSample](), reflect.TypeFor[strictLine](), reflect.TypeFor[[]strictLine](),
	reflect.TypeFor[map[string]int](), reflect.TypeFor[int64](), reflect.TypeFor[*strictLine](), reflect.TypeFor[any](),
}

var strictSeeds = []string{
	`{"name":"a","qty":1,"count":2,"ratio":0.5,"ok":true,"note":null,"at":"2026-12-01T00:00:00Z","any":{"x":[1]},"raw":"AQ==","lines":[{"sku":"A","qty":1},{"sku":"B","qty":2}],"tags":{"a":1},"nested":{"sku":"C","qty":3},"fixed":[1,2],"Plain":"p","deep":{"k":[true,false]}}`,
	`{"qty":1,"QTY":2}`, `{"qty":1,"qty":2}`, `{"q\u0074y":1}`, `{"qty":null}`, `null`, `{"lines":[{"sku":"A","qty":"1"}]}`,
	`{"lines":[{"sku":"A","qty":1.5}]}`, `{"count":-1,"qty":1}`, `{"count":300,"qty":1}`, `{"qty":1e3}`, `{"lines":{},"qty":1}`,
	` { "qty" : 1 , "name" : "a\"b" } `, `[1,2,3]`, `[{"qty":1},{"sku":"x"}]`, `{"tags":{"a":null,"b":"x"},"qty":1}`,
	`{"nested":null,"qty":1}`, `{"fixed":[1,"a"],"qty":1}`, `{"-":1,"qty":1}`, `{"Skipped":"x","qty":1}`, `{"deep":{"k":[null,1]},"qty":1}`,
	`"text"`, `12`, `true`, `{}`, `{"lines":[]}`, `{"any":null,"at":null,"raw":null,"qty":1}`, `{"ratio":1e400,"qty":1}`,
}

// FuzzCheckKeys walks valid JSON bodies along several types with the byte
// walk and with the token walk it replaced: the answers must be the same.
func FuzzCheckKeys(f *testing.F) {
	for _, s := range strictSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return // the real decode refuses it before any walk
		}
		for _, typ := range strictTypes {
			got, want := checkKeys(body, typ), checkKeysByTokens(body, typ)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s along %v: byte walk says %v, token walk %v", body, typ, got, want)
			}
		}
	})
}

// placeBody is a one-line order as the flash sale's buyers send it.
var placeBody = []byte(`{"customer_id":"c-42","currency":"USD","lines":[{"sku":"FLASH-1","qty":1}]}`)

type placeShape struct {
	CustomerID string       `json:"customer_id"`
	Currency   string       `json:"currency"`
	Lines      []strictLine `json:"lines"`
}

// BenchmarkCheckKeys is the key walk every command body pays after its
// decode; BenchmarkCheckKeysByTokens the walk on a json.Decoder's tokens
// it replaced.
func BenchmarkCheckKeys(b *testing.B) {
	t := reflect.TypeFor[placeShape]()
	b.ReportAllocs()
	for b.Loop() {
		if err := checkKeys(placeBody, t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckKeysByTokens(b *testing.B) {
	t := reflect.TypeFor[placeShape]()
	b.ReportAllocs()
	for b.Loop() {
		if err := checkKeysByTokens(placeBody, t); err != nil {
			b.Fatal(err)
		}
	}
}
