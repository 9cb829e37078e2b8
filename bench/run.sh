#!/usr/bin/env bash
# Run every /ws benchmark scenario against a fresh instance and plot the latency curve.
#
#   bash bench/run.sh                     # SQLite, wss:// (TLS, the dev certificate)
#   BENCH_PLAIN=1 bash bench/run.sh       # ws:// on Hypercorn's insecure bind (no TLS cost)
#   BENCH_DATABASE_URL=postgresql+asyncpg://medchat@127.0.0.1:55432/medchat_bench bash bench/run.sh
#   BENCH_SCENARIOS="capacity fanout" bash bench/run.sh   # a subset
#   BENCH_BATCH=1 BENCH_SCENARIOS="ward ward1000 wardmixed" bash bench/run.sh   # the ward shape (issue 10 section 3)
#   BENCH_RECEIPTS=1 bash bench/run.sh    # every scenario's clients send receipts like the PWA
#
# Hypercorn is pinned to core 0 (taskset -c 0) and the generator to core 1. Results go to
# bench/results/<scenario>-<label>.json (git-ignored); the plot to docs/performance-latency.png.
# Not part of the test suite. See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# 1000 sockets on each side, plus the database: raise the descriptor limit as far as allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

PY=.venv/bin/python
USERS=${BENCH_USERS:-1000}
RATES=${BENCH_RATES:-20,50,100,200,300}
DURATION=${BENCH_DURATION:-20}
SCENARIOS=${BENCH_SCENARIOS:-capacity mixed fanout idle commits storm reconnect}
DB_URL=${BENCH_DATABASE_URL:-}
DB=sqlite
[ -n "$DB_URL" ] && DB=postgresql
TRANSPORT=wss
LOADGEN_FLAGS=()
if [ -n "${BENCH_PLAIN:-}" ]; then TRANSPORT=ws; LOADGEN_FLAGS+=(--plain); fi
# BENCH_BATCH=1: clients connect with ?batch=1, as the browser client does.
if [ -n "${BENCH_BATCH:-}" ]; then TRANSPORT=$TRANSPORT-batch; LOADGEN_FLAGS+=(--batch); fi
# BENCH_RECEIPTS=1: clients send delivered receipts as the browser client does (the ward
# scenarios always do); BENCH_READERS=0.1: that share of them looks at the chat (read receipts).
if [ -n "${BENCH_RECEIPTS:-}" ]; then TRANSPORT=$TRANSPORT-receipts; LOADGEN_FLAGS+=(--receipts); fi
[ -n "${BENCH_READERS:-}" ] && LOADGEN_FLAGS+=(--readers "$BENCH_READERS")
WARD_RATES=${BENCH_WARD_RATES:-50,100,200}
LABEL=${BENCH_LABEL:-$DB-$TRANSPORT}
INSTANCE=bench/results/instance-$DB

say() { echo "[bench $(date +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)] $*"; }

server_args=(--instance "$INSTANCE")
[ -n "$DB_URL" ] && server_args+=(--database-url "$DB_URL")

if [ -z "${BENCH_KEEP_DATA:-}" ] || [ ! -f "bench/results/data-instance-$DB.json" ]; then
    say "fresh instance $INSTANCE ($USERS users)"
    $PY bench/server.py stop --instance "$INSTANCE" >/dev/null 2>&1 || true
    rm -rf "$INSTANCE"
    mkdir -p "$INSTANCE"
    setup_env=(MEDCHAT_INSTANCE_PATH="$INSTANCE")
    [ -n "$DB_URL" ] && setup_env+=(MEDCHAT_DATABASE_URL="$DB_URL")
    env "${setup_env[@]}" $PY bench/setup_data.py --users "$USERS" --reset
fi

trap '$PY bench/server.py stop --instance "$INSTANCE" >/dev/null 2>&1 || true' EXIT
$PY bench/server.py stop --instance "$INSTANCE" >/dev/null 2>&1 || true
say "starting Hypercorn on core 0"
$PY bench/server.py start "${server_args[@]}" >/dev/null

gen() { taskset -c 1 $PY bench/loadgen.py --instance "$INSTANCE" --label "$LABEL" "${LOADGEN_FLAGS[@]}" "$@"; }
fresh_server() { $PY bench/server.py restart --instance "$INSTANCE" >/dev/null; sleep 2; }

for scenario in $SCENARIOS; do
    fresh_server  # every scenario starts on a new worker process
    say "scenario $scenario"
    case $scenario in
        ward)      gen ward --members 100 --rates "$WARD_RATES" --duration "$DURATION" ;;
        ward1000)  gen --label "$LABEL-1000" ward --members 1000 --rates 5 --duration "$DURATION" ;;
        wardmixed) gen --label "$LABEL-receipts" --batch --receipts mixed --users "$USERS" --rate 20 --duration 30 ;;
        capacity)  gen capacity --rates "$RATES" --duration "$DURATION" ;;
        mixed)     gen mixed --users "$USERS" --rate 20 --duration 30 ;;
        mixeddirect) gen --label "$LABEL-direct" mixed --users "$USERS" --rate 20 --duration 30 --direct-fraction 0.3 ;;
        fanout)    gen fanout --count 10 ;;
        idle)      gen idle --users "$USERS" ;;
        commits)   gen commits --senders 200 --duration 20 ;;
        storm)     gen storm --users "$USERS" ;;
        reconnect) gen reconnect --users "$USERS" ;;
        *) echo "unknown scenario $scenario" >&2; exit 2 ;;
    esac
done

$PY bench/plot.py || say "plot failed (pip install -r bench/requirements.txt)"
say "done"
