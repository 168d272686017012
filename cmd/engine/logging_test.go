package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orderengine/engine/internal/pglocal"
)

func TestServeLogsDurationsReadably(t *testing.T) {
	env := map[string]string{
		"ENGINE_HTTP_ADDR": "127.0.0.1:0",
		"ENGINE_DATA_DIR":  t.TempDir(),
		"DATABASE_URL":     pglocal.ForTest(t),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, stdout, stderr) }()
	addr := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	waitUntil(t, "the engine to listen", func() bool {
		m := addr.FindStringSubmatch(stdout.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	var line map[string]any
	waitUntil(t, "the request's log line", func() bool {
		sc := bufio.NewScanner(strings.NewReader(stderr.String()))
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "request" {
				line = l
				return true
			}
		}
		return false
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	s, ok := line["duration"].(string)
	if !ok {
		t.Fatalf("duration logged as %T %v, want a string like \"1.2ms\": %v", line["duration"], line["duration"], line)
	}
	if d, err := time.ParseDuration(s); err != nil || d <= 0 {
		t.Errorf("duration %q does not parse as a positive time.Duration: %v", s, err)
	}
}
