package main

import (
	"strconv"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/orderengine/engine/eventstore"
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
	// Listen (ENGINE_NATS_LISTEN) makes the embedded NATS server accept
	// connections there, for Reader alone: ENGINE_FEED_USER (default
	// "feed") with ENGINE_FEED_PASSWORD, who may read the feed through
	// its durable consumer and nothing else. Empty: in process only.
	Listen string
	Reader *eventstore.FeedAccess
}

func parseFeedConfig(getenv func(string) string) (feedConfig, error) {
	var c feedConfig
	if c.Listen = getenv("ENGINE_NATS_LISTEN"); c.Listen != "" {
		switch {
		case getenv("NATS_URL") != "":
			return c, errors.WithHint(errors.New("ENGINE_NATS_LISTEN is for the embedded NATS server, and NATS_URL is set"),
				"give feed readers an account on your NATS servers instead (docs/feed.md), or unset one of them")
		case getenv("ENGINE_FEED") == "off":
			return c, errors.WithHint(errors.New("ENGINE_NATS_LISTEN serves the feed, and ENGINE_FEED is off"), "unset one of them")
		}
		a := eventstore.FeedAccess{User: or(getenv("ENGINE_FEED_USER"), "feed"), Password: getenv("ENGINE_FEED_PASSWORD")}
		if err := a.Valid(); err != nil {
			return c, errors.Wrap(err, "ENGINE_NATS_LISTEN needs ENGINE_FEED_USER and ENGINE_FEED_PASSWORD")
		}
		c.Reader = &a
	}
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
