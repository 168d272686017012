package eventstore

import (
	"strconv"
	"strings"

	"github.com/cockroachdb/errors"
)

// maxTokenShards bounds the shard index a Consistency-Token may name, so a
// hostile token cannot make a reader allocate without limit.
const maxTokenShards = 1024

// Token is a Consistency-Token: for each shard (index k for shard k), the
// stream sequence the read models must have applied. Components left out
// are 0.
//
// Its text form is a plain decimal when only shard 0 is named (so a
// one-shard store's tokens are the plain stream sequences they always
// were, and a plain decimal from an older client means shard 0), and
// otherwise comma-separated "<shard>:<seq>" components, e.g. "1:456" or
// "0:123,2:456".
type Token []uint64

// TokenAt returns the token of one write: seq on shard k, 0 elsewhere.
func TokenAt(pos Position) Token {
	t := make(Token, pos.Shard+1)
	t[pos.Shard] = pos.Seq
	return t
}

// String returns the token's text form.
func (t Token) String() string {
	var b strings.Builder
	for k, seq := range t {
		if seq == 0 || k == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(k) + ":" + strconv.FormatUint(seq, 10))
	}
	if b.Len() == 0 {
		return strconv.FormatUint(t.At(0), 10)
	}
	if t.At(0) == 0 {
		return b.String()
	}
	return "0:" + strconv.FormatUint(t[0], 10) + "," + b.String()
}

// At returns the component of shard k, 0 when the token does not name it.
func (t Token) At(k int) uint64 {
	if k < 0 || k >= len(t) {
		return 0
	}
	return t[k]
}

// Max returns the component-wise maximum of t and u: the token that waits
// for both.
func (t Token) Max(u Token) Token {
	out := make(Token, max(len(t), len(u)))
	for k := range out {
		out[k] = max(t.At(k), u.At(k))
	}
	return out
}

// CoveredBy reports whether every component of t is at or below the same
// shard's entry of seqs (a shard seqs does not name stands at 0).
func (t Token) CoveredBy(seqs []uint64) bool {
	for k, seq := range t {
		if seq > 0 && (k >= len(seqs) || seq > seqs[k]) {
			return false
		}
	}
	return true
}

// ParseToken reads a token's text form (see Token). It fails on anything
// else, on a shard named twice and on a shard index of 1024 or more.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, ":") {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, errors.Newf("%q is not a decimal stream sequence", s)
		}
		return Token{n}, nil
	}
	var t Token
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		ks, seqs, _ := strings.Cut(strings.TrimSpace(part), ":")
		k, err := strconv.Atoi(ks)
		if err != nil || k < 0 || k >= maxTokenShards || seen[k] {
			return nil, errors.Newf("%q does not name a shard (0 to %d, once)", part, maxTokenShards-1)
		}
		seq, err := strconv.ParseUint(seqs, 10, 64)
		if err != nil {
			return nil, errors.Newf("%q does not hold a decimal stream sequence", part)
		}
		seen[k] = true
		if k >= len(t) {
			t = append(t, make(Token, k+1-len(t))...)
		}
		t[k] = seq
	}
	return t, nil
}
