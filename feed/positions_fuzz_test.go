package feed

import "testing"

// FuzzDecodePositions: any header value either decodes into positions that
// encode back to an equivalent header, or is refused; never a panic.
func FuzzDecodePositions(f *testing.F) {
	for _, s := range []string{"0:12", "0:1,1:40,2:0", "", "0:", ":1", "5:1", "0:-1", "0:1,0:2", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pos := make([]uint64, 3)
		if err := decodePositions(s, pos); err != nil {
			return
		}
		again := make([]uint64, 3)
		if err := decodePositions(encodePositions(pos), again); err != nil {
			t.Fatalf("%q decoded to %v, whose encoding %q does not decode: %v", s, pos, encodePositions(pos), err)
		}
		for k := range pos {
			if pos[k] != again[k] {
				t.Fatalf("%q: %v, round trip %v", s, pos, again)
			}
		}
	})
}
