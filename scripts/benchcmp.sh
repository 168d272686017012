#!/usr/bin/env bash
# Compares the Go micro-benchmarks (testing.B) of two commits with benchstat.
#
#   scripts/benchcmp.sh OLD [NEW]     # NEW defaults to the work tree
#
# Each side runs in its own checkout (a temporary git worktree for a
# commit), BENCH_COUNT times (default 6, what benchstat needs for its
# confidence intervals), alternating old and new so that a change in the
# machine's load hits both. BENCH_PATTERN picks the benchmarks (default:
# the decider, envelope sealing/encoding/decoding, projection decode and
# apply); the group-commit Append benchmark is left out by default because
# its numbers are dominated by the disk. benchstat comes from the Go module
# proxy at a pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
	echo "usage: scripts/benchcmp.sh OLD [NEW]" >&2
	exit 2
fi
old=$1
new=${2:-}
pattern=${BENCH_PATTERN:-'Decide|Seal|EncodeEnvelope|DecodeEnvelope|DecodeEvent|ApplyBatch'}
count=${BENCH_COUNT:-6}
pkgs=(./domain ./eventstore ./projections)
benchstat=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

tmp=$(mktemp -d)
cleanup() {
	git worktree remove --force "$tmp/old" >/dev/null 2>&1 || true
	git worktree remove --force "$tmp/new" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
git worktree add -q --detach "$tmp/old" "$old"
newdir=.
if [ -n "$new" ]; then
	git worktree add -q --detach "$tmp/new" "$new"
	newdir=$tmp/new
fi

once() { # dir output
	(cd "$1" && go test -run='^$' -bench="$pattern" -benchmem -count=1 "${pkgs[@]}") | grep -E '^(goos|goarch|pkg|cpu|Benchmark)' >>"$2"
}
for i in $(seq "$count"); do
	echo "benchcmp: round $i of $count" >&2
	once "$tmp/old" "$tmp/old.txt"
	once "$newdir" "$tmp/new.txt"
done
go run "$benchstat" "old=$tmp/old.txt" "new=$tmp/new.txt"
