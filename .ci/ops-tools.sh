#!/usr/bin/env bash
# Makes sure the operations tools CI runs on deploy/ are on this machine,
# built from their Go modules through the module proxy into a cache
# directory, each only when missing. Quiet: one line per thing it had to
# build, nothing when all is there.
#
#   .ci/ops-tools.sh          ensure everything
#   .ci/ops-tools.sh --env    ensure everything, then print `export` lines
#                             naming the binaries (for eval)
#
# Cache: ${FORWARDAUTH_GATEWAY_CACHE:-$HOME/.cache/forwardauth-gateways}
# (shared with .ci/gateways.sh), with promtool-<module version> in it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FORWARDAUTH_GATEWAY_CACHE:-$HOME/.cache/forwardauth-gateways}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# run CMD...: runs quietly; on failure shows what it printed and stops.
run() {
	if ! "$@" >"$log" 2>&1; then
		echo "ops-tools: failed: $*" >&2
		cat "$log" >&2
		exit 1
	fi
}

mkdir -p "$cache"
export CGO_ENABLED=0

# --- promtool -----------------------------------------------------------------
# Built as a tool of the nested module tools/prometheus, whose go.mod pins
# github.com/prometheus/prometheus: module v0.316.0 is Prometheus 3.16.0.
prom_module=$(awk '$1 == "github.com/prometheus/prometheus" { print $2; exit }
	$1 == "require" && $2 == "github.com/prometheus/prometheus" { print $3; exit }' "$root/tools/prometheus/go.mod")
[[ $prom_module =~ ^v0\.[0-9]+\.[0-9]+$ ]] || { echo "ops-tools: no release of github.com/prometheus/prometheus in tools/prometheus/go.mod: '$prom_module'" >&2; exit 1; }
IFS=. read -r _ prom_minor prom_patch <<<"${prom_module#v}"
prom_version=$((prom_minor / 100)).$((prom_minor % 100)).$prom_patch
promtool_bin=$cache/promtool-$prom_module
if [ ! -x "$promtool_bin" ]; then
	start=$SECONDS
	(
		cd "$root/tools/prometheus"
		run go build -trimpath \
			-ldflags "-s -w -X github.com/prometheus/common/version.Version=$prom_version" \
			-o "$promtool_bin.tmp" github.com/prometheus/prometheus/cmd/promtool
	)
	mv "$promtool_bin.tmp" "$promtool_bin"
	echo "ops-tools: built promtool $prom_version in $((SECONDS - start))s" >&2
fi

if [ "${1:-}" = --env ]; then
	printf 'export FORWARDAUTH_PROMTOOL=%q\n' "$promtool_bin"
fi
