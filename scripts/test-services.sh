#!/usr/bin/env bash
# Start throw-away PostgreSQL and Redis servers for the test suite, and print their URLs.
#
#   eval "$(scripts/test-services.sh | sed 's/^/export /')"
#   ./test.sh
#
# Installs the Debian packages postgresql and redis-server when missing (as root), runs a
# PostgreSQL cluster in /tmp/medchat-pg on 127.0.0.1:55432 (trust auth, no durability: it is
# for tests only) with a superuser role "medchat" and a database "medchat_test", and Redis on
# 127.0.0.1:56379 without persistence. Servers already running are reused. No systemd needed.
# Progress goes to stderr; stdout carries only the NAME=value lines.
# scripts/stop-test-services.sh stops both.
set -euo pipefail

PG_DIR="${MEDCHAT_PG_DIR:-/tmp/medchat-pg}"
PG_PORT=55432
PG_ROLE=medchat
PG_DB=medchat_test
REDIS_PORT=56379
REDIS_PID=/tmp/medchat-redis.pid
REDIS_LOG=/tmp/medchat-redis.log

say() { echo "[test-services] $*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }

pg_bindir() {
    # The newest installed server version.
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}

# --- packages -------------------------------------------------------------------------------
missing=()
pg_bindir >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
if [ "${#missing[@]}" -gt 0 ]; then
    if ! is_root; then
        say "missing ${missing[*]}; run this as root once to install them"
        exit 1
    fi
    say "installing ${missing[*]} (apt)"
    # Keep the packages' init scripts from starting their own servers (5432, 6379) during
    # the install; a policy-rc.d that already exists is left alone.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    trap 'if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
PG_BIN="$(pg_bindir)"

# Run a PostgreSQL server binary as the postgres OS user when we are root (initdb refuses root).
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# --- PostgreSQL -----------------------------------------------------------------------------
pg_running() { as_pg "$PG_BIN/pg_ctl" status -D "$PG_DIR" >/dev/null 2>&1; }

if [ -d "$PG_DIR" ] && [ ! -f "$PG_DIR/PG_VERSION" ]; then
    say "$PG_DIR is not a complete cluster; removing it"
    rm -rf "$PG_DIR"
fi
if [ ! -d "$PG_DIR" ]; then
    say "initdb $PG_DIR"
    if is_root; then
        install -d -o postgres -g postgres -m 700 "$PG_DIR"
    fi
    as_pg "$PG_BIN/initdb" -D "$PG_DIR" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    # Loopback only, socket in the data folder (no /run/postgresql needed), speed over safety.
    cat >> "$PG_DIR/postgresql.conf" <<EOF

# medchat test cluster (scripts/test-services.sh)
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
fi
if pg_running; then
    say "PostgreSQL already running on 127.0.0.1:$PG_PORT"
else
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" start -w -t 60 -D "$PG_DIR" -l "$PG_DIR/server.log" >/dev/null || {
        say "PostgreSQL did not start; the end of $PG_DIR/server.log:"
        tail -n 20 "$PG_DIR/server.log" >&2 || true
        exit 1
    }
fi

psql_q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc "$1"; }
if [ "$(psql_q "SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE'")" != 1 ]; then
    psql_q "CREATE ROLE $PG_ROLE LOGIN SUPERUSER"
fi
if [ "$(psql_q "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
    psql_q "CREATE DATABASE $PG_DB OWNER $PG_ROLE"
fi

# --- Redis ----------------------------------------------------------------------------------
redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

if redis_ping; then
    say "Redis already running on 127.0.0.1:$REDIS_PORT"
else
    say "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
        --save '' --appendonly no --dir /tmp \
        --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" >/dev/null
    for _ in $(seq 1 50); do
        redis_ping && break
        sleep 0.1
    done
    redis_ping || { say "Redis did not start; see $REDIS_LOG"; exit 1; }
fi

echo "MEDCHAT_TEST_DATABASE_URL=postgresql+asyncpg://$PG_ROLE@127.0.0.1:$PG_PORT/$PG_DB"
echo "MEDCHAT_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
