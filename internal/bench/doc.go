// Package bench is `engine bench`: it measures the engine against its
// baselines in one run on this machine. Each scenario starts fresh engines
// in this process through a host.Wiring (embedded NATS with sync_interval:
// always, a database of its own on a private or given Postgres), drives
// load over HTTP on loopback or through the command side, and reports a
// table and, with -json, a document of every figure.
package bench
