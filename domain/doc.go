// Package domain holds the order engine's business rules as pure deciders,
// in Jérémie Chassaing's style: Decide(state, command) ([]Event, error) says
// what happened, Evolve(state, event) state folds it in, and the zero value
// of each state is the initial state.
//
// Two aggregates live here: the Order (subject orders.<order_id>) and the
// inventory SKU (subject inventory.<sku>). Commands and events are closed
// sets, sealed by unexported methods, so every switch over them can be
// exhaustive; its default branch reports a broken invariant (a nil or a
// pointer where a value was expected) instead of silently ignoring it.
//
// The package is pure on purpose: no clock (time arrives in each command's
// At), no I/O, and no imports beyond the standard library and
// github.com/cockroachdb/errors. That keeps replay deterministic, which the
// audit trail and the read-model rebuilds depend on.
package domain
