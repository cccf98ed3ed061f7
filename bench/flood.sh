#!/usr/bin/env bash
# Credential floods against the service with its default settings, on
# 127.0.0.1 only, Authgear answering in 50 ms (bench/cmd/fakeauthgear):
#   one) one client address flooding over 1,000 connections for 20 s with
#        random well-shaped bearer tokens;
#   many) the same from 256 client addresses;
# in both, 50 real users from other addresses present a new valid token every
# second. Client addresses ride in X-Forwarded-For from a loopback peer (a
# trusted proxy by default), as behind a gateway. bench/cmd/flood reports the
# resolver calls of the flood against its budget, the real users' successes
# and latency, and the service's RSS and goroutines.
#
#   bash bench/flood.sh                        # both, about a minute
#   FLOODS=many DURATION=10s bash bench/flood.sh
# Environment: FLOODS ("one many"), DURATION (20s), CONNS (1000), USERS (50),
# DELAY (50ms, Authgear's latency), RESOLVER_CLIENT_RATE (20) /
# RESOLVER_CLIENT_BURST (100) passed to the service, SERVICE_ENV (more
# VAR=value settings for it, space-separated) and SERVICE_BIN (a service binary
# to run instead of building this checkout, e.g. another version's).
set -euo pipefail
cd "$(dirname "$0")/.."
FLOODS=${FLOODS:-"one many"}
DURATION=${DURATION:-20s}
CONNS=${CONNS:-1000}
USERS=${USERS:-50}
DELAY=${DELAY:-50ms}
RATE=${RESOLVER_CLIENT_RATE:-20}
BURST=${RESOLVER_CLIENT_BURST:-100}
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

# shellcheck source=bench/lib.sh
. bench/lib.sh

# The flood opens 1,000+ connections to the service and the service as many to
# the fake: room for descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
  done
  echo "no spare port" >&2; return 1
}
wait_ok() { # URL NAME
  for _ in $(seq 1 100); do curl -fs -o /dev/null --max-time 1 "$1" && return; sleep 0.1; done
  echo "$2 did not start:" >&2; tail -20 "$tmp/$2.log" >&2; exit 1
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(go version | cut -d' ' -f3-), $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== building"
if [ -n "${SERVICE_BIN:-}" ]; then cp "$SERVICE_BIN" "$tmp/forwardauth"; else go build -o "$tmp/forwardauth" .; fi
read -r -a service_env <<<"${SERVICE_ENV:-}"
go build -o "$tmp/" ./bench/cmd/fakeauthgear ./bench/cmd/flood

fport=$(free_port)
start fake "$tmp/fakeauthgear" -listen "127.0.0.1:$fport" -users "$USERS" -accept-prefix user -delay "$DELAY"
fake="http://127.0.0.1:$fport"
wait_ok "$fake/_calls" fake

for flood in $FLOODS; do
  case $flood in
    one) addrs=1 ;;
    many) addrs=256 ;;
    *) echo "unknown flood $flood (one, many)" >&2; exit 2 ;;
  esac
  echo "== $flood: $CONNS connections from $addrs address(es), $DURATION; $USERS real users; Authgear answers in $DELAY;" \
    "RESOLVER_CLIENT_RATE=$RATE RESOLVER_CLIENT_BURST=$BURST ${SERVICE_ENV:-}, other settings default"
  sport=$(free_port)
  start "svc-$flood" env -i PATH="$PATH" HOME="${HOME:-/root}" LISTEN_ADDR="127.0.0.1:$sport" \
    AUTHGEAR_ENDPOINT=https://bench.authgear.test AUTHGEAR_RESOLVER_URL="$fake/_resolver/resolve" \
    RESOLVER_CLIENT_RATE="$RATE" RESOLVER_CLIENT_BURST="$BURST" LOG_LEVEL=warn ${service_env[@]+"${service_env[@]}"} "$tmp/forwardauth"
  svc_pid=$last_pid
  svc="http://127.0.0.1:$sport"
  wait_ok "$svc/healthz" "svc-$flood"
  timeout -k 5 "$(( ${DURATION%s} + 60 ))" "$tmp/flood" -service "$svc" -fake "$fake" -pid "$svc_pid" \
    -conns "$CONNS" -addrs "$addrs" -duration "$DURATION" -users "$USERS" -rate "$RATE" -burst "$BURST" | sed 's/^/  /'
  echo "  service log: $(grep -c 'over its budget' "$tmp/svc-$flood.log" || true) 'over its budget' lines (at most one per client per minute)," \
    "$(grep -c '"level":"ERROR"' "$tmp/svc-$flood.log" || true) errors"
  kill "$svc_pid"; wait "$svc_pid" 2>/dev/null || true
done
