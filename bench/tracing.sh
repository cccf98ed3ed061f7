#!/usr/bin/env bash
# What tracing costs the in-process hit: the handler benchmarks
# (handler/bench_test.go, handler/trace_bench_test.go) with tracing off, on
# sampling everything and on sampling 1%, each against the bare baseline in
# the same round; with BASE=<commit>, also the code of that commit (before
# tracing) in the same rounds.
#
#   bash bench/tracing.sh                 ROUNDS=5, N=1000000
#   BASE=1475018 bash bench/tracing.sh    also "before", built from that commit
#
# Each benchmark runs alone in its own process for a fixed N requests from 2
# goroutines (RunParallel). Besides go test's ns/op (wall time) it prints the
# process's user+system CPU time divided by N, which counts everything the
# request costs the process (the span exporter's goroutine, GC) and moves less
# than wall time when other work shares the machine. Tracing on exports over
# OTLP/HTTP to a collector in the test process that discards what it reads.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-5}
N=${N:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$root" && go test -c -o "$work/after.test" ./handler/)
if [ -n "${BASE:-}" ]; then
	git -C "$root" archive "$BASE" | tar -x -C "$work" --one-top-level=base
	(cd "$work/base" && go test -c -o "$work/before.test" ./handler/)
fi

# run LABEL BINARY BENCHMARK: one line, CPU ns per request, then go test's figures.
run() {
	local times line
	TIMEFORMAT='%U %S'
	times=$( { time (cd "$root/handler" && "$2" -test.run '^$' -test.bench "^Benchmark$3\$" -test.benchmem \
		-test.benchtime "${N}x" | grep "^Benchmark" >"$work/line"); } 2>&1)
	line=$(awk '{print $3, $4, $5, $6, $7, $8}' "$work/line")
	printf '%-7s %-32s cpu %6d ns/op   wall %s\n' "$1" "$3" \
		"$(awk -v t="$times" -v n="$N" 'BEGIN { split(t, a, " "); printf "%d", (a[1] + a[2]) * 1e9 / n }')" "$line"
}

for round in $(seq 1 "$ROUNDS"); do
	echo "## round $round, $(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
	if [ -n "${BASE:-}" ]; then
		run before "$work/before.test" BaselineBareHandler
		run before "$work/before.test" AuthHitInProcess
	fi
	run after "$work/after.test" BaselineBareHandler
	run after "$work/after.test" AuthHitInProcess
	run after "$work/after.test" AuthHitInProcessTracedAll
	run after "$work/after.test" AuthHitInProcessTraced1Percent
done
