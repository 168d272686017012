#!/usr/bin/env bash
# Runs every fuzz target in the module for a bounded number of executions
# each, one at a time, and stops at the first failure. Usage:
# scripts/fuzz.sh [fuzztime] (default 20000x; any -fuzztime value).
#
# The default is a count, not a duration: Go 1.26's fuzz coordinator can
# report a bare "context deadline exceeded" failure when a duration-based
# -fuzztime expires while a worker is mid-call (golang/go#75804, fixed in
# Go 1.27), which failed CI with no input to reproduce. A count has no
# deadline to race. 20000 executions take 2-30s per target on 2 cores.
#
# go test accepts -fuzz for one target in one package per run, so the
# targets are found by name in the test files. A failure leaves the failing
# input under the package's testdata/fuzz/<Target>/: commit it, and it runs
# as a regression test with every plain `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${1:-20000x}"
# Minimizing every new interesting input for the default 60s would eat the
# whole budget; a failing input is still minimized for this long.
minimize="${FUZZ_MINIMIZE_TIME:-2s}"

# "<dir> <Target>" per line, e.g. "commands FuzzCommandBodies".
targets=$(grep -R --include='*_test.go' --exclude-dir=vendor --exclude-dir=testdata -oE '^func Fuzz[A-Za-z0-9_]*\(' . |
	awk -F: '{ d = $1; sub(/\/[^\/]*$/, "", d); sub(/^\.\/?/, "", d); n = $2; sub(/^func /, "", n); sub(/\($/, "", n); print (d == "" ? "." : d), n }' |
	sort -u)
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

start=$SECONDS
while read -r dir name; do
	echo "== $name (./$dir, $fuzztime)"
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" -fuzzminimizetime="$minimize" "./$dir" </dev/null
done <<<"$targets"
echo "fuzz.sh: $(wc -l <<<"$targets") targets passed in $((SECONDS - start))s"
