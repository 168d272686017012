package main

import (
	"log/slog"
)

// logOptions are the options of every log handler the engine makes: level,
// and durations written as "82ms" rather than JSON's raw nanoseconds
// ("took":82000000), which nobody reads at a glance.
func logOptions(level slog.Level) *slog.HandlerOptions {
	return &slog.HandlerOptions{Level: level, ReplaceAttr: readableDuration}
}

// readableDuration is a slog ReplaceAttr: a time.Duration value becomes
// its String form, which time.ParseDuration reads back.
func readableDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
