#!/usr/bin/env bash
# The service against a bare baseline, in one run: builds the service, the
# Authgear test double (bench/cmd/fakeauthgear) and the baseline
# (bench/cmd/baseline), starts a real Redis on a spare port, drives each
# target in turn with wrk and prints req/s, p50, p99, the CPU each request
# cost the server, and the ratio service/baseline. Then counts the resolver
# calls of cold bursts (resolver economy).
#
#   bash bench/run.sh                          # every scenario, about 3 minutes
#   DURATION=20s REPEAT=3 bash bench/run.sh    # longer, best of 3 (noisy machines)
#   SCENARIOS="a d" bash bench/run.sh          # a subset
#
# Scenarios: a) in-process hit  j) a JWT verified locally, warm  b) Redis hit,
# one token  b2) Redis hit, many warm tokens  c) 10,000 distinct tokens, cold
# d) through nginx auth_request  e) resolver economy  h) through HAProxy's
# lua.forwardauth. Environment: DURATION (10s, wrk's -d), REPEAT (1: each
# service/baseline pair is run this many times, alternating, and the best
# req/s of each is kept), THREADS (2), CONNS (64), TOKENS (10000, b2 and c),
# ECON_N (1000) concurrent requests carrying ECON_K (100) tokens in e,
# ECON_DELAY (50ms, the resolver's latency in e), NGINX_WORKERS (1),
# HAPROXY_THREADS (1), SCENARIOS ("a j b b2 c d e h").
# Everything listens on 127.0.0.1; every process started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

DURATION=${DURATION:-10s}
REPEAT=${REPEAT:-1}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
TOKENS=${TOKENS:-10000}
ECON_N=${ECON_N:-1000}
ECON_K=${ECON_K:-100}
ECON_DELAY=${ECON_DELAY:-50ms}
NGINX_WORKERS=${NGINX_WORKERS:-1}
HAPROXY_THREADS=${HAPROXY_THREADS:-1}
SCENARIOS=${SCENARIOS:-"a j b b2 c d e h"}

# --- tools ---------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
command -v go >/dev/null || { echo "go is required" >&2; exit 1; }

# --- processes -------------------------------------------------------------
# shellcheck source=bench/lib.sh
. bench/lib.sh # (the scripts run from the repository root)

# stop PID: stops one process started by start, and forgets it (once reaped,
# its pid may belong to someone else).
stop() {
  local p keep=()
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}

die() {
  echo "$1" >&2
  [ -z "${2:-}" ] || { echo "--- $2:" >&2; tail -20 "$tmp/$2.log" >&2 || true; }
  exit 1
}

# free_port: a port nobody listens on, below the ephemeral range (32768+) so
# that no outgoing connection holds it.
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && ! grep -qx "$p" "$tmp/ports" 2>/dev/null; then
      echo "$p" >>"$tmp/ports"
      echo "$p"
      return
    fi
  done
  echo "no spare port" >&2
  return 1
}

# wait_file FILE LOG: the URL file a bench binary writes once listening.
wait_file() {
  for _ in $(seq 1 100); do
    [ -s "$1" ] && { cat "$1"; return; }
    sleep 0.1
  done
  die "timed out waiting for $1" "$2"
}

# wait_http URL LOG: until URL answers at all.
wait_http() {
  for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "$1" && return
    sleep 0.1
  done
  die "timed out waiting for $1" "$2"
}

secs() { # 10s, 1m, 10 -> seconds
  case $1 in
    *ms) echo 1 ;;
    *s) echo "${1%s}" ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *h) echo $(( ${1%h} * 3600 )) ;;
    *) echo "$1" ;;
  esac
}
wrk_bound=$(( $(secs "$DURATION") + 30 ))
clk_tck=$(getconf CLK_TCK)

calls() { curl -fsS --max-time 5 "$1/_calls"; }

# metric URL NAME [LABEL=VALUE...]: the sum of a Prometheus metric's samples
# having every label given (whatever other labels they have).
metric() {
  local url=$1 name=$2; shift 2
  curl -fsS --max-time 5 "$url/metrics" | awk -v m="$name" -v want="$*" '
    BEGIN { n = split(want, w, " ") }
    $1 == m || index($1, m "{") == 1 {
      for (i = 1; i <= n; i++) {
        split(w[i], kv, "=")
        if (index($1, kv[1] "=\"" kv[2] "\"") == 0) next
      }
      s += $NF
    }
    END { printf "%d", s }'
}

# cpu_ticks PID...: user+system CPU time of the processes, in clock ticks.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do
    t=$(( t + $(awk '{ print $14 + $15 }' "/proc/$p/stat") ))
  done
  echo "$t"
}

# --- results ---------------------------------------------------------------
results=$tmp/results
: >"$results"

# bench LABEL URL PIDS [wrk args...]: one wrk run. PIDS (comma-separated) are
# the server processes whose CPU time per request is reported. Prints the run
# and records it; sets $rps.
bench() {
  local label=$1 url=$2 pidlist=$3; shift 3
  local out line p50 p99 errs non2xx reqs t0 t1 cpu
  local -a procs
  IFS=, read -r -a procs <<<"$pidlist"
  t0=$(cpu_ticks "${procs[@]}")
  if ! out=$(timeout -k 5 "$wrk_bound" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 5s \
      -s "$repo/bench/wrk/report.lua" "$@" "$url" 2>&1); then
    echo "$out" >&2
    die "wrk failed: $label"
  fi
  t1=$(cpu_ticks "${procs[@]}")
  line=$(grep '^WRK ' <<<"$out") || { echo "$out" >&2; die "no figures from wrk: $label"; }
  field() { sed -E "s/.* $1=([0-9.]+).*/\1/" <<<"$line"; }
  rps=$(field rps); p50=$(field p50_ms); p99=$(field p99_ms)
  errs=$(field errors); non2xx=$(field non2xx); reqs=$(field requests)
  cpu=$(awk -v t=$((t1 - t0)) -v hz="$clk_tck" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  printf '  %-36s %7s req/s  p50 %6s ms  p99 %7s ms  server CPU %5s us/req' "$label" "$rps" "$p50" "$p99" "$cpu"
  [ "$errs$non2xx" = "00" ] || printf '  (errors %s, non-2xx %s)' "$errs" "$non2xx"
  printf '\n'
  printf 'RUN\t%s\t%s\t%s\t%s\t%s\n' "$label" "$rps" "$p50" "$p99" "$cpu" >>"$results"
}

# pair SCENARIO SERVICE_LABEL SERVICE_FN BASELINE_LABEL BASELINE_FN: runs
# both functions (each one bench) REPEAT times, alternating; records the ratio
# of the best req/s of each.
pair() {
  local scenario=$1 slabel=$2 sfn=$3 blabel=$4 bfn=$5 r s b from
  from=$(wc -l <"$results")
  for ((r = 1; r <= REPEAT; r++)); do
    "$sfn"
    "$bfn"
  done
  best() { awk -F'\t' -v l="$1" -v from="$from" 'NR > from && $1 == "RUN" && $2 == l && $3 > m { m = $3 } END { print m }' "$results"; }
  s=$(best "$slabel")
  b=$(best "$blabel")
  r=$(awk -v s="$s" -v b="$b" 'BEGIN { printf "%.2f", s / b }')
  printf '  => %s: service/baseline = %sx (best req/s of %d: %s / %s)\n' "$scenario" "$r" "$REPEAT" "$s" "$b"
  printf 'RATIO\t%s\t%s\n' "$scenario" "$r" >>"$results"
}

want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# --- build -----------------------------------------------------------------
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(go version | cut -d' ' -f3-), $(date -u +%Y-%m-%dT%H:%MZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== wrk -t$THREADS -c$CONNS -d$DURATION, best of $REPEAT; scenarios: $SCENARIOS"
echo "== building"
go build -o "$tmp/forwardauth" .
go build -o "$tmp/" ./bench/cmd/fakeauthgear ./bench/cmd/baseline ./bench/cmd/loadgen

# --- shared processes --------------------------------------------------------
redis_port=$(free_port)
start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp"
for _ in $(seq 1 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$redis_port" ping >/dev/null || die "redis-server did not start" redis
redis_url="redis://127.0.0.1:$redis_port/0"

start fake "$tmp/fakeauthgear" -tokens "$TOKENS" -users 100 -url-file "$tmp/fake.url"
fake=$(wait_file "$tmp/fake.url" fake)

start baseline "$tmp/baseline" -url-file "$tmp/baseline.url"
baseline_pid=$last_pid
baseline=$(wait_file "$tmp/baseline.url" baseline)

secret=bench-cache-key-secret-0123456789abcdef

# service NAME [VAR=value...]: starts the service (default settings but the
# given ones) with the fake as Authgear; sets $svc (its URL) and $svc_pid.
# wrk and loadgen are one client (127.0.0.1) playing many users: no
# per-client budget (RESOLVER_CLIENT_RATE=0; bench/flood.sh measures it).
# AG overrides the fake's URL.
service() {
  local name=$1; shift
  local port
  port=$(free_port)
  start "$name" env -i PATH="$PATH" HOME="${HOME:-/root}" \
    LISTEN_ADDR="127.0.0.1:$port" \
    AUTHGEAR_ENDPOINT="https://bench.authgear.test" \
    AUTHGEAR_RESOLVER_URL="${AG:-$fake}/_resolver/resolve" \
    RESOLVER_CLIENT_RATE=0 \
    "$@" "$tmp/forwardauth"
  svc_pid=$last_pid
  svc="http://127.0.0.1:$port"
  wait_http "$svc/healthz" "$name"
}

# check URL TOKEN: one request, must be a 200 (and warms the cache).
check() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $2" "$1")
  [ "$code" = 200 ] || die "GET $1 with $2: status $code, want 200"
}

lookups() { # the service's cache counters
  echo "local hits $(metric "$1" forwardauth_cache_lookups_total result=hit tier=local)," \
    "redis hits $(metric "$1" forwardauth_cache_lookups_total result=hit tier=redis)," \
    "redis misses $(metric "$1" forwardauth_cache_lookups_total result=miss tier=redis)," \
    "coalesced waits $(metric "$1" forwardauth_coalesced_waits_total)"
}

tok0=$(printf "tok%029d" 0) # bench/internal/benchtok's token 0
tok=(-H "Authorization: Bearer $tok0")
base_static() { bench "baseline" "$baseline/auth" "$baseline_pid" "${tok[@]}"; }
base_random() { WRK_TOKENS=$TOKENS bench "baseline, random-token script" "$baseline/auth" "$baseline_pid"; }

# --- a) in-process hit -------------------------------------------------------
if want a; then
  echo "== a) in-process hit: one token, no Redis"
  service svc-a
  check "$svc/auth" "$tok0"
  a_svc() { bench "a service, in-process hit" "$svc/auth" "$svc_pid" "${tok[@]}"; }
  pair "a in-process hit" "a service, in-process hit" a_svc "baseline" base_static
  stop "$svc_pid"
fi

# --- j) JWT verified locally -------------------------------------------------
if want j; then
  echo "== j) JWT verified locally (JWT_VERIFY=true), warm: one token of about 1 KB, no Redis; the baseline gets the same header"
  jwt=$(curl -fsS --max-time 5 "$fake/_jwt")
  service svc-j JWT_VERIFY=true
  for _ in $(seq 1 100); do # until the service has the fake's keys
    grep -q '"jwks loaded"' "$tmp/svc-j.log" && break
    sleep 0.1
  done
  grep -q '"jwks loaded"' "$tmp/svc-j.log" || die "the service never loaded the fake's keys" svc-j
  check "$svc/auth" "$jwt"
  jtok=(-H "Authorization: Bearer $jwt")
  j_svc() { bench "j service, JWT verified, warm" "$svc/auth" "$svc_pid" "${jtok[@]}"; }
  j_base() { bench "baseline, JWT header" "$baseline/auth" "$baseline_pid" "${jtok[@]}"; }
  c0=$(calls "$fake")
  pair "j JWT verified locally, warm" "j service, JWT verified, warm" j_svc "baseline, JWT header" j_base
  echo "    resolver calls $(( $(calls "$fake") - c0 ))"
  stop "$svc_pid"
fi

# --- b) Redis hit ------------------------------------------------------------
if want b; then
  echo "== b) Redis hit: one token, LOCAL_CACHE_TTL=0 (in-process tier off)"
  redis-cli -p "$redis_port" flushall >/dev/null
  service svc-b REDIS_URL="$redis_url" CACHE_KEY_SECRET="$secret" LOCAL_CACHE_TTL=0
  check "$svc/auth" "$tok0"
  b_svc() {
    local c0 c1
    c0=$(calls "$fake")
    bench "b service, Redis hit, 1 token" "$svc/auth" "$svc_pid" "${tok[@]}"
    c1=$(calls "$fake")
    echo "    resolver calls $((c1 - c0)); since start: $(lookups "$svc")"
  }
  pair "b Redis hit, 1 token" "b service, Redis hit, 1 token" b_svc "baseline" base_static
  stop "$svc_pid"
fi

if want b2; then
  echo "== b2) Redis hit: $TOKENS warm tokens at random, LOCAL_CACHE_TTL=0 (in-process tier off)"
  redis-cli -p "$redis_port" flushall >/dev/null
  service svc-b2 REDIS_URL="$redis_url" CACHE_KEY_SECRET="$secret" LOCAL_CACHE_TTL=0
  timeout -k 5 120 "$tmp/loadgen" -targets "$svc" -n "$TOKENS" -c 32 | sed 's/^/  warm-up: /'
  b2_svc() {
    local c0 c1
    c0=$(calls "$fake")
    WRK_TOKENS=$TOKENS bench "b2 service, Redis hit, $TOKENS tokens" "$svc/auth" "$svc_pid"
    c1=$(calls "$fake")
    echo "    resolver calls $((c1 - c0)); since start: $(lookups "$svc")"
  }
  pair "b2 Redis hit, $TOKENS tokens" "b2 service, Redis hit, $TOKENS tokens" b2_svc \
    "baseline, random-token script" base_random
  stop "$svc_pid"
fi

# --- c) many tokens ----------------------------------------------------------
if want c; then
  echo "== c) $TOKENS distinct tokens at random, cold cache (a fresh service, Redis flushed), Redis and default settings"
  c_svc() {
    local c0 c1
    redis-cli -p "$redis_port" flushall >/dev/null
    service svc-c REDIS_URL="$redis_url" CACHE_KEY_SECRET="$secret"
    c0=$(calls "$fake")
    WRK_TOKENS=$TOKENS bench "c service, $TOKENS tokens" "$svc/auth" "$svc_pid"
    c1=$(calls "$fake")
    echo "    resolver calls $((c1 - c0)); $(lookups "$svc")"
    stop "$svc_pid"
  }
  pair "c $TOKENS tokens, cold" "c service, $TOKENS tokens" c_svc "baseline, random-token script" base_random
fi

# --- d) through nginx --------------------------------------------------------
if want d; then
  echo "== d) through nginx auth_request (worker_processes $NGINX_WORKERS): the service (in-process hit) vs the baseline as auth server"
  service svc-d
  check "$svc/auth" "$tok0"
  ngx=$tmp/nginx
  mkdir -p "$ngx"
  p_app=$(free_port); p_svc=$(free_port); p_base=$(free_port); p_noauth=$(free_port)
  user=""
  [ "$(id -u)" != 0 ] || user="user root;"
  sed -e "s|@USER@|$user|" -e "s|@WORKERS@|$NGINX_WORKERS|" -e "s|@DIR@|$ngx|g" -e "s|@REPO@|$repo|g" \
    -e "s|@SERVICE@|${svc#http://}|" -e "s|@BASELINE@|${baseline#http://}|" \
    -e "s|@APP_PORT@|$p_app|g" -e "s|@SERVICE_PORT@|$p_svc|" -e "s|@BASELINE_PORT@|$p_base|" \
    -e "s|@NOAUTH_PORT@|$p_noauth|" bench/nginx/bench.conf >"$ngx/nginx.conf"
  "$NGINX" -t -q -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log"
  start nginx "$NGINX" -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" -g "daemon off;"
  nginx_pid=$last_pid
  wait_http "http://127.0.0.1:$p_noauth/" nginx
  check "http://127.0.0.1:$p_svc/" "$tok0"
  check "http://127.0.0.1:$p_base/" "$tok0"
  workers=$(pgrep -d, -P "$nginx_pid")
  echo "  (server CPU: the auth server's; for \"nginx alone\", nginx's workers')"
  d_svc() {
    bench "d nginx + service" "http://127.0.0.1:$p_svc/" "$svc_pid" "${tok[@]}"
  }
  d_base() {
    bench "d nginx + baseline" "http://127.0.0.1:$p_base/" "$baseline_pid" "${tok[@]}"
  }
  pair "d through nginx" "d nginx + service" d_svc "d nginx + baseline" d_base
  bench "d nginx alone, no auth_request" "http://127.0.0.1:$p_noauth/" "$workers" "${tok[@]}"
  stop "$nginx_pid"
  stop "$svc_pid"
fi

# --- h) through HAProxy --------------------------------------------------------
if want h; then
  echo "== h) through HAProxy lua.forwardauth (nbthread $HAPROXY_THREADS), deploy/haproxy as shipped: the service (in-process hit) vs the baseline as auth server"
  service svc-h
  check "$svc/auth" "$tok0"
  # The application: another baseline process (any 200 will do).
  start app-h "$tmp/baseline" -url-file "$tmp/app-h.url"
  app_h_pid=$last_pid
  app_h=$(wait_file "$tmp/app-h.url" app-h)
  # haproxy_cfg AUTH_ADDR PORT [sed args...]: deploy/haproxy/haproxy.cfg with
  # the addresses rewritten (as the e2e suite does) and nbthread set.
  haproxy_cfg() {
    local auth=$1 port=$2; shift 2
    sed -e "s|^global\$|global\n    nbthread $HAPROXY_THREADS|" -e "s|bind :80|bind 127.0.0.1:$port|" \
      -e "s|/etc/haproxy/forwardauth.lua|$repo/deploy/haproxy/forwardauth.lua|" \
      -e "s|forwardauth:8080|$auth|g" -e "s|app:8080|${app_h#http://}|" "$@" deploy/haproxy/haproxy.cfg
  }
  p_svc=$(free_port); p_base=$(free_port); p_noauth=$(free_port)
  haproxy_cfg "${svc#http://}" "$p_svc" >"$tmp/haproxy-svc.cfg"
  haproxy_cfg "${baseline#http://}" "$p_base" >"$tmp/haproxy-base.cfg"
  # No check at all: the same file without the action and its guard.
  haproxy_cfg "${baseline#http://}" "$p_noauth" -e '/lua\.forwardauth/d' -e '/deny_status 500/d' >"$tmp/haproxy-noauth.cfg"
  for c in svc base noauth; do
    "$HAPROXY" -c -q -f "$tmp/haproxy-$c.cfg" || die "haproxy -c: haproxy-$c.cfg"
    start "haproxy-$c" "$HAPROXY" -db -f "$tmp/haproxy-$c.cfg"
    printf -v "hap_$c" '%s' "$last_pid"
  done
  wait_http "http://127.0.0.1:$p_svc/" haproxy-svc
  wait_http "http://127.0.0.1:$p_base/" haproxy-base
  wait_http "http://127.0.0.1:$p_noauth/" haproxy-noauth
  check "http://127.0.0.1:$p_svc/" "$tok0"
  check "http://127.0.0.1:$p_base/" "$tok0"
  check "http://127.0.0.1:$p_noauth/" "$tok0"
  echo "  (server CPU: HAProxy's own; the auth server's is in a and d)"
  h_svc() { bench "h HAProxy + service" "http://127.0.0.1:$p_svc/" "$hap_svc" "${tok[@]}"; }
  h_base() { bench "h HAProxy + baseline" "http://127.0.0.1:$p_base/" "$hap_base" "${tok[@]}"; }
  pair "h through HAProxy" "h HAProxy + service" h_svc "h HAProxy + baseline" h_base
  bench "h HAProxy alone, no lua.forwardauth" "http://127.0.0.1:$p_noauth/" "$hap_noauth" "${tok[@]}"
  stop "$hap_svc"; stop "$hap_base"; stop "$hap_noauth"
  stop "$app_h_pid"; stop "$svc_pid"
fi

# --- e) resolver economy -------------------------------------------------------
if want e; then
  echo "== e) resolver economy: $ECON_N requests at once carrying $ECON_K distinct tokens, cold cache, resolver latency $ECON_DELAY"
  start fake-econ "$tmp/fakeauthgear" -tokens "$ECON_K" -users 10 -prefix econ -delay "$ECON_DELAY" -url-file "$tmp/fake-econ.url"
  fake_econ=$(wait_file "$tmp/fake-econ.url" fake-econ)
  burst() {
    timeout -k 5 120 "$tmp/loadgen" -burst -n "$ECON_N" -k "$ECON_K" -prefix econ -targets "$1" | sed 's/^/  /' ||
      echo "  (loadgen: some requests failed)"
  }
  econ() { # LABEL CALLS EXPECTED
    echo "  => $1: resolver calls $2 (expected $3)"
    printf 'ECON\t%s\t%s\t%s\n' "$1" "$2" "$3" >>"$results"
  }

  AG=$fake_econ service svc-e1
  c0=$(calls "$fake_econ")
  burst "$svc"
  c1=$(calls "$fake_econ")
  econ "one replica, no Redis" "$((c1 - c0))" "exactly $ECON_K"
  stop "$svc_pid"

  redis-cli -p "$redis_port" flushall >/dev/null
  AG=$fake_econ service svc-e2a REDIS_URL="$redis_url" CACHE_KEY_SECRET="$secret"
  r1=$svc; r1_pid=$svc_pid
  AG=$fake_econ service svc-e2b REDIS_URL="$redis_url" CACHE_KEY_SECRET="$secret"
  r2=$svc; r2_pid=$svc_pid
  c0=$(calls "$fake_econ")
  burst "$r1,$r2"
  c1=$(calls "$fake_econ")
  econ "two replicas sharing Redis, each token to both" "$((c1 - c0))" "at most $((2 * ECON_K)), no Redis lock"
  burst "$r1,$r2"
  c2=$(calls "$fake_econ")
  econ "the same burst again, warm" "$((c2 - c1))" "0"
  stop "$r1_pid"; stop "$r2_pid"
fi

# --- summary ---------------------------------------------------------------
echo
echo "== summary (wrk -t$THREADS -c$CONNS -d$DURATION; every run)"
awk -F'\t' '
  $1 == "RUN"   { printf "  %-38s %7s req/s  p50 %6s ms  p99 %7s ms  server CPU %5s us/req\n", $2, $3, $4, $5, $6 }
' "$results"
awk -F'\t' '
  $1 == "RATIO" { printf "  ratio %-34s %sx\n", $2 ":", $3 }
  $1 == "ECON"  { printf "  resolver calls, %s: %s (expected %s)\n", $2, $3, $4 }
' "$results"
