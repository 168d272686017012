package main

import (
	"strconv"
	"time"

	"github.com/orderengine/engine/webhooks"
)

// feedConfig is the integration feed's part of the environment
// (docs/feed.md).
type feedConfig struct {
	// Off (ENGINE_FEED=off) runs neither the feed forwarder nor webhooks.
	Off bool
	// Webhooks tunes delivery: ENGINE_WEBHOOK_MAX_ATTEMPTS,
	// ENGINE_WEBHOOK_TIMEOUT, ENGINE_WEBHOOK_MAX_BACKOFF.
	Webhooks webhooks.Options
}

func parseFeedConfig(getenv func(string) string) (feedConfig, error) {
	var c feedConfig
	switch v := getenv("ENGINE_FEED"); v {
	case "", "on":
	case "off":
		c.Off = true
	default:
		return c, envError("ENGINE_FEED", v, "on or off")
	}
	if v := getenv("ENGINE_WEBHOOK_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return c, envError("ENGINE_WEBHOOK_MAX_ATTEMPTS", v, "a whole number from 1 to 100")
		}
		c.Webhooks.MaxAttempts = n
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{"ENGINE_WEBHOOK_TIMEOUT", &c.Webhooks.Timeout}, {"ENGINE_WEBHOOK_MAX_BACKOFF", &c.Webhooks.MaxBackoff}} {
		v := getenv(d.env)
		if v == "" {
			continue
		}
		t, err := time.ParseDuration(v)
		if err != nil || t <= 0 {
			return c, envError(d.env, v, "a positive Go duration such as 10s or 2m")
		}
		*d.to = t
	}
	return c, nil
}
