package queries

import (
	"testing"
	"time"
)

func TestOrderCursorRoundTrip(t *testing.T) {
	cases := []OrderCursor{
		{CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), OrderID: "01a20175-b06f-7e24-bfa6-dd103fbd5943"},
		{CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), OrderID: "00000000-0000-0000-0000-000000000000"},
		{CreatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), OrderID: "ffffffff-ffff-ffff-ffff-ffffffffffff"},
	}
	for _, c := range cases {
		s, err := encodeOrderCursor(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeOrderCursor(s)
		if err != nil || !got.CreatedAt.Equal(c.CreatedAt) || got.OrderID != c.OrderID {
			t.Errorf("%+v: round trip gave %+v, %v", c, got, err)
		}
	}
	if _, err := encodeOrderCursor(OrderCursor{OrderID: "x"}); err == nil {
		t.Error("a cursor with a non-UUID order id was encoded")
	}
}

// FuzzDecodeOrderCursor checks that whatever a client sends, a cursor that
// decodes is one encodeOrderCursor gives back exactly, so a cursor has one
// spelling, and its time is one Postgres accepts.
func FuzzDecodeOrderCursor(f *testing.F) {
	s, _ := encodeOrderCursor(OrderCursor{CreatedAt: time.Unix(1e9, 0), OrderID: "01a20175-b06f-7e24-bfa6-dd103fbd5943"})
	for _, seed := range []string{s, "", "AQ", s + "A", "not base64!"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := decodeOrderCursor(in)
		if err != nil {
			return
		}
		if y := c.CreatedAt.Year(); y < 1 || y > 9999 {
			t.Fatalf("%q decodes to year %d", in, y)
		}
		out, err := encodeOrderCursor(c)
		if err != nil || out != in {
			t.Fatalf("%q decodes to %+v, which encodes to %q (%v)", in, c, out, err)
		}
	})
}

// FuzzDecodeInventoryCursor checks that a cursor that decodes holds a valid
// SKU and has one spelling.
func FuzzDecodeInventoryCursor(f *testing.F) {
	for _, seed := range []string{encodeInventoryCursor("sku-1"), "", "AQ", "AV9iYWQ"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sku, err := decodeInventoryCursor(in)
		if err != nil {
			return
		}
		if out := encodeInventoryCursor(sku); out != in {
			t.Fatalf("%q decodes to %q, which encodes to %q", in, sku, out)
		}
	})
}
