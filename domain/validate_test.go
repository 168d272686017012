package domain

import (
	"math"
	"strings"
	"testing"
)

func TestValidSKU(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"a": true, "A": true, "0": true, "abc-DEF_123": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "-a": false, "_a": false,
		"A.>": false, "a.b": false, "*": false, ">": false, "a b": false, " a": false, "a\t": false,
		"é": false, "a/b": false, "a\x00": false,
	}
	for s, want := range tests {
		if ValidSKU(s) != want || ValidCustomerID(s) != want {
			t.Errorf("ValidSKU(%q) = %v, want %v", s, !want, want)
		}
	}
}

func TestValidCurrency(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{"USD": true, "EUR": true, "usd": false, "US": false, "USDX": false, "U$D": false, "": false, "ÉUR": false}
	for s, want := range tests {
		if ValidCurrency(s) != want {
			t.Errorf("ValidCurrency(%q) = %v, want %v", s, !want, want)
		}
	}
}

func TestValidOrderID(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		testOrderID:                              true,
		"00000000-0000-0000-0000-000000000000":   true,
		strings.ToUpper(testOrderID):             false,
		"01890a5d-ac96-774b-bcce-b302099a805":    false,
		"01890a5d-ac96-774b-bcce-b302099a80577":  false,
		"01890a5dac96-774b-bcce-b302099a80577":   false,
		"01890a5d_ac96_774b_bcce_b302099a8057":   false,
		"01890a5g-ac96-774b-bcce-b302099a8057":   false,
		"{01890a5d-ac96-774b-bcce-b302099a8057}": false,
		"":                                       false,
	}
	for s, want := range tests {
		if ValidOrderID(s) != want {
			t.Errorf("ValidOrderID(%q) = %v, want %v", s, !want, want)
		}
	}
}

func TestCheckText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s        string
		required bool
		ok       bool
	}{
		{"", true, false}, {"", false, true}, {" ", true, false}, {" ", false, true},
		{"a", true, true}, {strings.Repeat("a", 255), true, true}, {strings.Repeat("a", 256), false, false},
		{"a\tb", false, false}, {"a\u0085b", false, false}, {"\xff", true, false}, {"a\u200bb", false, false},
		{"Ünïcödé ✓ 日本", true, true},
	}
	for _, tt := range tests {
		var fe fieldErrors
		checkText(&fe, "f", tt.s, tt.required)
		if fe.has("f") == tt.ok {
			t.Errorf("checkText(%q, required=%v) ok = %v, want %v", tt.s, tt.required, !tt.ok, tt.ok)
		}
	}
}

func TestOverflowCheckedArithmetic(t *testing.T) {
	t.Parallel()
	mul := []struct {
		a, b, want int64
		ok         bool
	}{
		{0, math.MaxInt64, 0, true}, {3, 4, 12, true}, {-3, 4, -12, true},
		{math.MaxInt64, 1, math.MaxInt64, true}, {math.MaxInt64, 2, 0, false},
		{math.MinInt64, -1, 0, false}, {-1, math.MinInt64, 0, false}, {math.MinInt64, 1, math.MinInt64, true},
		{1 << 32, 1 << 31, 0, false}, {1 << 31, 1 << 31, 1 << 62, true},
	}
	for _, tt := range mul {
		got, ok := mulInt64(tt.a, tt.b)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("mulInt64(%d, %d) = %d, %v", tt.a, tt.b, got, ok)
		}
	}
	add := []struct {
		a, b, want int64
		ok         bool
	}{
		{1, 2, 3, true}, {math.MaxInt64, 0, math.MaxInt64, true}, {math.MaxInt64, 1, 0, false},
		{math.MinInt64, -1, 0, false}, {math.MinInt64, math.MaxInt64, -1, true},
	}
	for _, tt := range add {
		got, ok := addInt64(tt.a, tt.b)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("addInt64(%d, %d) = %d, %v", tt.a, tt.b, got, ok)
		}
	}
}

func TestReservationID(t *testing.T) {
	t.Parallel()
	id := ReservationID(testOrderID, "apple")
	if id != testOrderID+"-apple" || strings.ContainsAny(id, ".*> ") {
		t.Fatalf("ReservationID = %q", id)
	}
}
