#!/usr/bin/env bash
# Stop the servers scripts/test-services.sh started. --purge also deletes the PostgreSQL data.
set -euo pipefail

PG_DIR="${MEDCHAT_PG_DIR:-/tmp/medchat-pg}"
REDIS_PORT=56379

say() { echo "[stop-test-services] $*" >&2; }

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ -n "$PG_BIN" ] && [ -f "$PG_DIR/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" status -D "$PG_DIR" >/dev/null 2>&1; then
    say "stopping PostgreSQL ($PG_DIR)"
    as_pg "$PG_BIN/pg_ctl" stop -w -m fast -D "$PG_DIR" >/dev/null
else
    say "PostgreSQL not running"
fi

if command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
    say "stopping Redis (127.0.0.1:$REDIS_PORT)"
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
else
    say "Redis not running"
fi

if [ "${1:-}" = "--purge" ]; then
    say "removing $PG_DIR"
    rm -rf "$PG_DIR"
fi
