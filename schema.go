// Package orderengine holds what belongs to the whole module: the Postgres
// schema, embedded so that the engine applies it at start.
package orderengine

import _ "embed"

// Schema is schema.sql: the whole Postgres schema, idempotent.
//
//go:embed schema.sql
var Schema string
