package webhooks_test

import (
	"strings"
	"testing"
	"time"

	"github.com/orderengine/engine/webhooks"
)

func TestSignatureVerifies(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"o1:1"}`)
	header := webhooks.Sign("whsec_x", now, body)
	if !strings.HasPrefix(header, "t=1800000000,v1=") {
		t.Fatalf("header %q", header)
	}
	tests := []struct {
		name, secret, header string
		body                 []byte
		at                   time.Time
		ok                   bool
	}{
		{"genuine", "whsec_x", header, body, now, true},
		{"within tolerance", "whsec_x", header, body, now.Add(4 * time.Minute), true},
		{"replayed later", "whsec_x", header, body, now.Add(6 * time.Minute), false},
		{"other body", "whsec_x", header, []byte(`{"id":"o1:2"}`), now, false},
		{"other secret", "whsec_y", header, body, now, false},
		{"timestamp moved", "whsec_x", strings.Replace(header, "t=1800000000", "t=1800000300", 1), body, now.Add(5 * time.Minute), false},
		{"malformed", "whsec_x", "v1=abc", body, now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhooks.Verify(tt.secret, tt.header, tt.body, tt.at, 5*time.Minute)
			if (err == nil) != tt.ok {
				t.Errorf("Verify = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestBackoffIsJitteredUnderACappedExponential(t *testing.T) {
	t.Parallel()
	base, ceiling := 100*time.Millisecond, 2*time.Second
	for n, bound := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: 1600 * time.Millisecond, 6: ceiling, 70: ceiling} {
		for range 200 {
			if d := webhooks.Backoff(base, ceiling, n); d < 0 || d > bound {
				t.Fatalf("attempt %d: waited %s, beyond [0, %s]", n, d, bound)
			}
		}
	}
}
