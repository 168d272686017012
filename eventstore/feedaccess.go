package eventstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"time"

	"github.com/cockroachdb/errors"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// FeedAccess lets one outside system read the feed from the embedded
// server (ENGINE_NATS_LISTEN): a user of an account of its own that
// reaches nothing but its durable consumer on the feed.
//
// Why an account and not only permissions: within one account, any client
// that may send a request chooses its reply subject, and the server sends
// the answer there as itself, so a reader with read-only permissions could
// still have JetStream answers stored into orders.<id> (tried: it works).
// Across accounts, the service imports below rewrite the reply subject,
// and the reader's account has no JetStream and no path to the engine's
// subjects but the three imported ones.
type FeedAccess struct {
	// User names the reader and its durable consumer on the feed.
	User     string
	Password string
}

// FeedAPIPrefix is the JetStream API prefix a feed reader uses
// (jetstream.NewWithAPIPrefix): the engine's API as its account imports it.
const FeedAPIPrefix = "$JS.ENGINE.API"

// feedAccount names the readers' account.
const feedAccount = "FEED_READERS"

// EngineUser is the user the engine's own connection authenticates as
// when the embedded server has feed readers (EmbeddedOptions.Feed).
const EngineUser = "engine"

var feedUserName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Valid reports what is wrong with a, nil when nothing.
func (a FeedAccess) Valid() error {
	switch {
	case !feedUserName.MatchString(a.User):
		return errors.WithHint(errors.Newf("feed user %q is not a valid name", a.User), "use 1 to 64 letters, digits, '-' or '_'")
	case a.User == EngineUser:
		return errors.WithHint(errors.Newf("feed user %q is the engine's own", a.User), "choose another name")
	case len(a.Password) < 16:
		return errors.WithHint(errors.New("the feed password is shorter than 16 characters"), "use a long random password")
	}
	return nil
}

// feedExports are the engine-account subjects a reader reaches, and
// whether the answer is a stream of messages (a pull request's).
func feedExports(user string) []struct {
	subject  string
	streamed bool
} {
	return []struct {
		subject  string
		streamed bool
	}{
		{"$JS.API.CONSUMER.INFO." + FeedStream + "." + user, false},
		{"$JS.API.CONSUMER.MSG.NEXT." + FeedStream + "." + user, true},
		{"$JS.ACK." + FeedStream + "." + user + ".>", false},
	}
}

// feedImportSubject is where the reader's account sees an exported subject.
func feedImportSubject(exported string) string {
	if rest, ok := strings.CutPrefix(exported, "$JS.API."); ok {
		return FeedAPIPrefix + "." + rest
	}
	return exported
}

// embeddedAuth configures so for the engine's user (full rights, in the
// global account where the store's streams have always lived) and the
// feed reader's (an account of its own, allowed to publish only to its
// imports).
func embeddedAuth(so *server.Options, enginePassword string, fa FeedAccess) {
	acc := server.NewAccount(feedAccount)
	so.Accounts = []*server.Account{acc}
	var allow []string
	for _, e := range feedExports(fa.User) {
		allow = append(allow, feedImportSubject(e.subject))
	}
	so.Users = []*server.User{
		{Username: EngineUser, Password: enginePassword},
		{Username: fa.User, Password: fa.Password, Account: acc, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: allow},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}},
	}
}

// wireFeedAccess enables JetStream for the global account (with accounts
// configured the server no longer does; its streams are found where they
// were) and connects the reader's imports to the engine's exports.
func wireFeedAccess(ns *server.Server, fa FeedAccess) error {
	g := ns.GlobalAccount()
	if err := g.EnableJetStream(map[string]server.JetStreamAccountLimits{
		"": {MaxMemory: -1, MaxStore: -1, MaxStreams: -1, MaxConsumers: -1},
	}, nil); err != nil {
		return errors.Wrap(err, "enable JetStream for the engine's account")
	}
	acc, err := ns.LookupAccount(feedAccount)
	if err != nil {
		return errors.Wrap(err, "look up the feed readers' account")
	}
	for _, e := range feedExports(fa.User) {
		rt := server.Singleton
		if e.streamed {
			rt = server.Streamed
		}
		if err := g.AddServiceExportWithResponse(e.subject, rt, []*server.Account{acc}); err != nil {
			return errors.Wrapf(err, "export %s", e.subject)
		}
		if err := acc.AddServiceImport(g, feedImportSubject(e.subject), e.subject); err != nil {
			return errors.Wrapf(err, "import %s", e.subject)
		}
	}
	return nil
}

// randomPassword returns a fresh password for the engine's own user.
func randomPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// EnsureFeedConsumer creates the durable pull consumer of feed reader
// user on the feed, from the feed's first message, unless it exists: the
// reader cannot create consumers itself (see FeedAccess), and its acks
// move it on across restarts of either side.
func (s *Store) EnsureFeedConsumer(ctx context.Context, user string) error {
	if err := s.OpenFeed(ctx); err != nil {
		return err
	}
	_, err := s.js.Consumer(ctx, FeedStream, user)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return errors.Wrapf(unavailable(err), "read feed consumer %s", user)
	}
	_, err = s.js.CreateConsumer(ctx, FeedStream, jetstream.ConsumerConfig{
		Durable:       user,
		Description:   "feed reader " + user + " (ENGINE_FEED_USER)",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 1000,
	})
	return errors.Wrapf(unavailable(err), "create feed consumer %s", user)
}
