#!/usr/bin/env bash
# Revocation lag: two replicas sharing a real Redis under load; a user.disabled
# webhook to one; the time from its 200 to the last allow for that user on
# either replica. Everything on 127.0.0.1; stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log" --dir "$tmp"
trap 'kill "$(cat "$tmp/redis.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/forwardauth" .
go build -o "$tmp/revocationlag" ./bench/cmd/revocationlag
"$tmp/revocationlag" -service "$tmp/forwardauth" -redis "redis://127.0.0.1:$port/0" "$@"
