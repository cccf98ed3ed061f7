#!/usr/bin/env bash
# Go benchmarks of two commits, interleaved round by round so that a noisy
# machine weighs on both alike: the test binaries of OLD and NEW (default:
# HEAD), each run ROUNDS times in turn, and per benchmark the median, the
# least and the greatest ns/op of each.
#
#   bash bench/abtest.sh OLD [NEW]
#   PKG=./handler/ BENCH='^BenchmarkAuthHit' ROUNDS=12 BENCHTIME=500ms bash bench/abtest.sh 4a3ab72
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/abtest.sh OLD [NEW]}
new=${2:-HEAD}
pkg=${PKG:-./handler/}
bench=${BENCH:-^(BenchmarkBaselineBareHandler|BenchmarkBaselineBareHandlerNine|BenchmarkAuthHitInProcess|BenchmarkAuthHitInProcessGateway|BenchmarkAuthHitInProcessAssertion)\$}
rounds=${ROUNDS:-12}
benchtime=${BENCHTIME:-500ms}

work=$(mktemp -d)
trap 'for d in "$work"/src-*; do [ -d "$d" ] && git worktree remove --force "$d"; done; rm -rf "$work"' EXIT
for side in old new; do
  rev=$old
  [ "$side" = new ] && rev=$new
  git worktree add -q --detach "$work/src-$side" "$rev"
  (cd "$work/src-$side" && go test -c -o "$work/$side.test" "$pkg")
  echo "$side: $(git rev-parse --short "$rev")"
done

# The benchmarks read testdata relative to their package: run from it.
dir=$work/src-new/${pkg#./}
for _ in $(seq "$rounds"); do
  for side in old new; do
    (cd "$dir" && "$work/$side.test" -test.run '^$' -test.bench "$bench" -test.benchtime "$benchtime") |
      awk -v side="$side" '/^Benchmark/ {print side, $1, $3}'
  done
done | sort -k2,2 -k1,1 | awk '
  { key = $2 " " $1; n[key]++; v[key, n[key]] = $3; keys[key] = 1 }
  END {
    for (k in keys) {
      m = n[k]
      for (i = 1; i <= m; i++) a[i] = v[k, i]
      for (i = 2; i <= m; i++) { x = a[i]; j = i - 1; while (j > 0 && a[j] > x) { a[j+1] = a[j]; j-- } a[j+1] = x }
      med = (m % 2) ? a[(m+1)/2] : (a[m/2] + a[m/2+1]) / 2
      printf "%-44s %-3s median %7.1f  least %7.1f  greatest %7.1f ns/op  (%d rounds)\n", substr(k, 1, index(k, " ") - 1), substr(k, index(k, " ") + 1), med, a[1], a[m], m
    }
  }' | sort
