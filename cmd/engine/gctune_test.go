package main

import "testing"

func TestMemTotal(t *testing.T) {
	for _, tc := range []struct {
		name, meminfo string
		want          int64
	}{
		{"machine", "MemTotal:       24683772 kB\nMemFree:        21709200 kB\n", 24683772 * 1024},
		{"not first", "Foo: 1 kB\nMemTotal: 2048 kB\n", 2048 * 1024},
		{"absent", "MemFree: 1 kB\n", 0},
		{"other unit", "MemTotal: 2048 MB\n", 0},
		{"not a number", "MemTotal: lots kB\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := memTotal([]byte(tc.meminfo)); got != tc.want {
				t.Fatalf("memTotal = %d, want %d", got, tc.want)
			}
		})
	}
}
