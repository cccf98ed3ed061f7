#!/usr/bin/env bash
# Makes sure the real gateways the e2e suite (e2e/) runs are on this machine:
# nginx, HAProxy and redis-server from apt, Traefik and Caddy built from source into a
# cache directory, each only when missing. Idempotent and quiet: it prints one
# line per thing it had to install or build, nothing when all is there.
#
#   .ci/gateways.sh          ensure everything
#   .ci/gateways.sh --env    ensure everything, then print `export` lines
#                            naming the binaries (for eval)
#
# Cache: ${FORWARDAUTH_GATEWAY_CACHE:-$HOME/.cache/forwardauth-gateways}, with
# traefik-<version> and caddy-<version> in it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${FORWARDAUTH_GATEWAY_CACHE:-$HOME/.cache/forwardauth-gateways}
# The Traefik version is the one tools/traefik/go.mod requires.
traefik_version=$(awk '$1 == "require" && $2 == "github.com/traefik/traefik/v3" { print $3 }' "$root/tools/traefik/go.mod")
caddy_version=v2.11.9
traefik_bin=$cache/traefik-$traefik_version
caddy_bin=$cache/caddy-$caddy_version

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# run CMD...: runs quietly; on failure shows what it printed and stops.
run() {
	if ! "$@" >"$log" 2>&1; then
		echo "gateways: failed: $*" >&2
		cat "$log" >&2
		exit 1
	fi
}

# --- apt packages: nginx (with auth_request), HAProxy (with Lua) and redis-server
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	start=$SECONDS
	run $sudo apt-get update -qq
	run $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
	echo "gateways: installed ${missing[*]} in $((SECONDS - start))s" >&2
fi

mkdir -p "$cache"
export CGO_ENABLED=0

# --- Traefik ------------------------------------------------------------------
# `go install` refuses Traefik (replace directives in its go.mod), so it is
# built as a tool of the nested module tools/traefik.
if [ ! -x "$traefik_bin" ]; then
	start=$SECONDS
	(
		cd "$root/tools/traefik"
		run go build -trimpath \
			-ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$traefik_version" \
			-o "$traefik_bin.tmp" github.com/traefik/traefik/v3/cmd/traefik
	)
	mv "$traefik_bin.tmp" "$traefik_bin"
	echo "gateways: built traefik $traefik_version in $((SECONDS - start))s" >&2
fi

# --- Caddy --------------------------------------------------------------------
if [ ! -x "$caddy_bin" ]; then
	start=$SECONDS
	gobin=$(mktemp -d)
	run env GOBIN="$gobin" go install -trimpath "github.com/caddyserver/caddy/v2/cmd/caddy@$caddy_version"
	mv "$gobin/caddy" "$caddy_bin"
	rmdir "$gobin"
	echo "gateways: built caddy $caddy_version in $((SECONDS - start))s" >&2
fi

if [ "${1:-}" = --env ]; then
	printf 'export FORWARDAUTH_E2E_NGINX=%q\n' "$(command -v nginx || echo /usr/sbin/nginx)"
	printf 'export FORWARDAUTH_E2E_HAPROXY=%q\n' "$(command -v haproxy || echo /usr/sbin/haproxy)"
	printf 'export FORWARDAUTH_E2E_REDIS=%q\n' "$(command -v redis-server || echo /usr/bin/redis-server)"
	printf 'export FORWARDAUTH_E2E_TRAEFIK=%q\n' "$traefik_bin"
	printf 'export FORWARDAUTH_E2E_CADDY=%q\n' "$caddy_bin"
fi
