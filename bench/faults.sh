#!/usr/bin/env bash
# Scripted runs under faults (bench/cmd/loadrun), everything on 127.0.0.1:
#   bash bench/faults.sh slow   # Authgear answers in 10 s; 500 clients for 30 s
#   bash bench/faults.sh soak   # 10 minutes of mixed load with a real Redis (DURATION=10m)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-slow}
tmp=$(mktemp -d)
cleanup() { [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/forwardauth" .
go build -o "$tmp/loadrun" ./bench/cmd/loadrun
case "$mode" in
slow)
  "$tmp/loadrun" -mode slow -service "$tmp/forwardauth" -clients "${CLIENTS:-500}" -duration "${DURATION:-30s}" -delay 10s ;;
soak)
  command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
  port=$((20000 + RANDOM % 20000))
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" --dir "$tmp"
  sleep 0.3
  "$tmp/loadrun" -mode soak -service "$tmp/forwardauth" -redis "redis://127.0.0.1:$port/0" -clients "${CLIENTS:-64}" -duration "${DURATION:-10m}" ;;
*) echo "usage: $0 slow|soak" >&2; exit 2 ;;
esac
