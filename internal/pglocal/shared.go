package pglocal

import "context"

// StartLoaded is Start with the settings of the tests' instance: room for
// a few hundred connections and a larger buffer cache, fsync still on.
// `engine bench` uses it, so that its Postgres baselines can run at the
// concurrency of the engine's load.
func StartLoaded(ctx context.Context, dataDir string) (*Instance, error) {
	return start(ctx, dataDir, options{settings: testSettings})
}

// WithDatabase returns connString (a URL or keyword/value string) with its
// database replaced by name.
func WithDatabase(connString, name string) (string, error) { return withDatabase(connString, name) }

// CreateDatabaseOn creates database name, if it does not exist, on the
// server adminURL connects to.
func CreateDatabaseOn(ctx context.Context, adminURL, name string) error {
	return createDatabase(ctx, adminURL, name)
}

// DropDatabaseOn drops database name on the server adminURL connects to,
// ending the sessions still on it.
func DropDatabaseOn(ctx context.Context, adminURL, name string) error {
	return dropDatabase(ctx, adminURL, name)
}
