#!/usr/bin/env bash
# Memory of the service after SESSIONS (1,000,000) distinct sessions went
# through it, the in-process tier at its default bound (LOCAL_CACHE_SIZE,
# 100000 unless set): builds the service, the Authgear test double (every
# bearer token numbered by bench/internal/benchtok with prefix mem is valid) and bench/cmd/loadgen, sends one
# request per distinct token over keep-alive connections, and prints the
# service's VmRSS and VmHWM from /proc before and after, with Go's heap
# figures from /metrics.
#
#   bash bench/memory.sh                        # in-process tier only, 2-4 minutes on 2 cores
#   REDIS=1 bash bench/memory.sh                # with a Redis too (also prints its used_memory)
#   SESSIONS=200000 CONC=32 bash bench/memory.sh
#
# Environment: SESSIONS (1000000), USERS (10000: sessions are spread over
# them), CONC (64 connections), MAX_DURATION (600s: the load stops there,
# reported as such), REDIS (0), CACHE_TTL (1h, so that no session expires
# during the run: the size bound, not the TTL, limits the in-process tier),
# LOCAL_CACHE_SIZE (the service's default), LOG_LEVEL (the service's default,
# info: one line per resolver call; only warnings and errors are kept, and
# the last ones printed).
set -euo pipefail
cd "$(dirname "$0")/.."

SESSIONS=${SESSIONS:-1000000}
CONC=${CONC:-64}
MAX_DURATION=${MAX_DURATION:-600s}
REDIS=${REDIS:-0}
USERS=${USERS:-10000}
CACHE_TTL=${CACHE_TTL:-1h}

need=()
command -v curl >/dev/null || need+=(curl)
if [ "$REDIS" = 1 ]; then
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v redis-cli >/dev/null || need+=(redis-tools)
fi
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# shellcheck source=bench/lib.sh
. bench/lib.sh # (the scripts run from the repository root)
die() {
  echo "$1" >&2
  [ -z "${2:-}" ] || { echo "--- $2:" >&2; tail -20 "$tmp/$2.log" >&2 || true; }
  exit 1
}
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
  done
  die "no spare port"
}
metric() { # URL NAME: the sum of a metric's samples, whatever their labels
  curl -fsS --max-time 5 "$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%d", s }'
}
secs() { # 600s, 10m, 600 -> seconds
  case $1 in
    *s) echo "${1%s}" ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *) echo "$1" ;;
  esac
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
status() { # PID FIELD: a /proc/PID/status field (kB)
  awk -v f="$2:" '$1 == f { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"
}
report() { # WHEN
  echo "  $1: VmRSS $(status "$svc_pid" VmRSS), VmHWM $(status "$svc_pid" VmHWM);" \
    "Go heap in use $(mib "$(metric "$svc" go_memstats_heap_inuse_bytes)")," \
    "live after the last GC ~$(mib $(( $(metric "$svc" go_memstats_next_gc_bytes) / 2 )))," \
    "Go sys $(mib "$(metric "$svc" go_memstats_sys_bytes)"), goroutines $(metric "$svc" go_goroutines)"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(go version | cut -d' ' -f3-), $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== building"
go build -o "$tmp/forwardauth" .
go build -o "$tmp/" ./bench/cmd/fakeauthgear ./bench/cmd/loadgen

start fake "$tmp/fakeauthgear" -tokens 0 -users "$USERS" -accept-prefix mem -url-file "$tmp/fake.url"
for _ in $(seq 1 100); do [ -s "$tmp/fake.url" ] && break; sleep 0.1; done
[ -s "$tmp/fake.url" ] || die "fakeauthgear did not start" fake
fake=$(cat "$tmp/fake.url")

extra=(CACHE_TTL="$CACHE_TTL")
if [ "$REDIS" = 1 ]; then
  redis_port=$(free_port)
  start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp"
  for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  extra+=(REDIS_URL="redis://127.0.0.1:$redis_port/0" CACHE_KEY_SECRET=bench-cache-key-secret-0123456789abcdef)
fi
[ -z "${LOCAL_CACHE_SIZE:-}" ] || extra+=(LOCAL_CACHE_SIZE="$LOCAL_CACHE_SIZE")
[ -z "${LOG_LEVEL:-}" ] || extra+=(LOG_LEVEL="$LOG_LEVEL")

port=$(free_port)
env -i PATH="$PATH" HOME="${HOME:-/root}" LISTEN_ADDR="127.0.0.1:$port" \
  AUTHGEAR_ENDPOINT=https://bench.authgear.test AUTHGEAR_RESOLVER_URL="$fake/_resolver/resolve" \
  RESOLVER_CLIENT_RATE=0 "${extra[@]}" "$tmp/forwardauth" > >(grep --line-buffered -v '"level":"INFO"' >"$tmp/svc.log") 2>&1 &
svc_pid=$!
pids+=("$svc_pid")
svc="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -s -o /dev/null --max-time 1 "$svc/healthz" && break; sleep 0.1; done
curl -fs -o /dev/null "$svc/healthz" || die "the service did not start" svc

bound=${LOCAL_CACHE_SIZE:-$(env -i "$tmp/forwardauth" -h | awk '$1 == "LOCAL_CACHE_SIZE" { print $3 }')}
echo "== $SESSIONS distinct sessions of $USERS users, $CONC keep-alive connections, LOCAL_CACHE_SIZE=$bound, CACHE_TTL=$CACHE_TTL, Redis: $([ "$REDIS" = 1 ] && echo yes || echo no)"
report "idle, before"
c0=$(curl -fsS "$fake/_calls")
loadgen_ok=1
timeout -k 5 "$(( $(secs "$MAX_DURATION") + 30 ))" "$tmp/loadgen" -targets "$svc" -n "$SESSIONS" -c "$CONC" -prefix mem \
  -max-duration "$MAX_DURATION" >"$tmp/loadgen.out" 2>&1 &
lg=$!
pids+=("$lg")
t=0
while kill -0 "$lg" 2>/dev/null; do
  sleep 1
  t=$((t + 1))
  if ((t % 15 == 0)); then
    echo "  ${t}s: $(( $(curl -fsS "$fake/_calls") - c0 )) sessions so far, VmRSS $(status "$svc_pid" VmRSS)"
  fi
done
wait "$lg" || loadgen_ok=0
unset 'pids[-1]' # reaped: its pid may belong to someone else now
sed 's/^/  /' "$tmp/loadgen.out"
c1=$(curl -fsS "$fake/_calls")
echo "  resolver calls: $((c1 - c0))"
report "after $SESSIONS sessions"
sleep 5
report "5 s later"
echo "  the service's warnings and errors: $(wc -l <"$tmp/svc.log")$(grep -c . "$tmp/svc.log" >/dev/null && echo ", the last ones:")"
tail -5 "$tmp/svc.log" | cut -c1-300 | sed 's/^/    /'
if [ "$REDIS" = 1 ]; then
  echo "  Redis tier errors (the request went on without it): $(metric "$svc" forwardauth_cache_shared_errors_total)"
  echo "  Redis: $(redis-cli -p "$redis_port" dbsize) keys, used_memory $(redis-cli -p "$redis_port" info memory | awk -F: '$1 == "used_memory_human" { print $2 }' | tr -d '\r')"
fi
[ "$loadgen_ok" = 1 ] || { echo "loadgen failed or was stopped (see above)" >&2; exit 1; }
