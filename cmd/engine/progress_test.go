package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestVerifyExportAndRebuildProgressArePlainWhenNotOnATerminal: their
// progress line is rewritten in place only on a terminal; in a log it is
// whole lines, and export's says what it counts.
func TestVerifyExportAndRebuildProgressArePlainWhenNotOnATerminal(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	start := time.Now().Add(-time.Second)
	bar := newProgressLine(&buf, start, "exporting: %d events written")
	bar.update(5)
	bar.finish()
	rb := &rebuildLine{progressLine: newProgressLine(&buf, start, "rebuilding: %d events")}
	rb.update(3, 3)
	rb.finish()
	out := buf.String()
	if strings.Contains(out, "\r") || strings.Contains(out, "\033") {
		t.Errorf("progress wrote terminal controls into a log: %q", out)
	}
	for _, want := range []string{"exporting: 5 events written (", "rebuilding: 3/3 events (100%"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress %q lacks %q", out, want)
		}
	}
	if !strings.HasSuffix(out, "\n") || strings.Contains(out, "\n\n") {
		t.Errorf("want whole lines and no empty one: %q", out)
	}
}
