// Package demo is `engine demo`: it runs the engine as serve does, through
// a host.Wiring, and drives a synthetic shop against its public API
// (orders, payments, shipments, cancellations, expiries, flash sales) so
// that the dashboard has something to show.
package demo
