package eventstore

import (
	"slices"
	"testing"
)

func TestTokenText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want Token
		back string // the text form of want, when it differs from text
	}{
		{"0", Token{0}, ""},
		{"123", Token{123}, ""},
		{"0:123", Token{123}, "123"},
		{"1:456", Token{0, 456}, ""},
		{"2:456,0:123", Token{123, 0, 456}, "0:123,2:456"},
		{" 3:7 ", Token{0, 0, 0, 7}, "3:7"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := ParseToken(tt.text)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseToken(%q) = %v, %v; want %v", tt.text, got, err, tt.want)
			}
			back := tt.back
			if back == "" {
				back = tt.text
			}
			if s := got.String(); s != back {
				t.Errorf("String() = %q, want %q", s, back)
			}
		})
	}
	for _, bad := range []string{"", "x", "-1", "1:", ":5", "1:2,1:3", "1024:1", "1:2;2:3", "18446744073709551616"} {
		if got, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) = %v, want an error", bad, got)
		}
	}
}

func TestTokenCoveredBy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		token Token
		seqs  []uint64
		want  bool
	}{
		{Token{5}, []uint64{5}, true},
		{Token{6}, []uint64{5}, false},
		{Token{0, 7}, []uint64{0, 7, 1}, true},
		{Token{0, 8}, []uint64{100, 7}, false},
		{Token{0, 0, 1}, []uint64{9, 9}, false}, // a shard the store does not have
		{Token{0, 0, 0}, nil, true},
		{TokenAt(Position{Shard: 2, Seq: 3}), []uint64{0, 0, 3}, true},
	}
	for _, tt := range tests {
		if got := tt.token.CoveredBy(tt.seqs); got != tt.want {
			t.Errorf("%v covered by %v: %v, want %v", tt.token, tt.seqs, got, tt.want)
		}
	}
	if got := (Token{1, 0, 5}).Max(Token{3, 2}); !slices.Equal(got, Token{3, 2, 5}) {
		t.Errorf("Max = %v", got)
	}
}
