#!/usr/bin/env bash
# Stalls (issue 10 section 3): the ward at one rate, each variant on a fresh worker with the
# event-loop trace (bench/loopmon.py), then the per-second timeline (bench/timeline.py).
#
#   BENCH_VARIANTS="base sqlite-write-lock base sqlite-write-lock" BENCH_RATE=50 bash bench/stalls.sh
#   BENCH_WARD_FLAGS="--no-receipts" ...   # loadgen flags before the scenario name
#   BENCH_PYSPY=1 ...                      # py-spy records the worker too (chrometrace, --idle --threads)
#
# "base" is the shipped code; any other name is a bench/experiments.py patch list. Results:
# bench/results/ward-stalls-<variant>-<n>.json, loopmon-stalls-<variant>-<n>.jsonl,
# timeline-stalls-<variant>-<n>.csv, and loadavg-stalls-<variant>-<n>.txt (one line a second).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
PY=.venv/bin/python
INSTANCE=bench/results/instance-sqlite
RATE=${BENCH_RATE:-50}
DURATION=${BENCH_DURATION:-30}
read -r -a FLAGS <<< "${BENCH_WARD_FLAGS:-}"
[ -f bench/results/data-instance-sqlite.json ] || { mkdir -p $INSTANCE; MEDCHAT_INSTANCE_PATH=$INSTANCE $PY bench/setup_data.py --users 1000 --reset; }
trap '$PY bench/server.py stop --instance "$INSTANCE" >/dev/null 2>&1 || true' EXIT
n=0
for variant in ${BENCH_VARIANTS:-base sqlite-write-lock}; do
    n=$((n + 1))
    tag=stalls${BENCH_TAG:-}-$variant-$n
    $PY bench/server.py stop --instance "$INSTANCE" >/dev/null 2>&1 || true
    rm -f "bench/results/loopmon-$tag.jsonl"
    args=(--instance "$INSTANCE" --monitor "bench/results/loopmon-$tag.jsonl")
    [ "$variant" != base ] && args+=(--experiment "$variant")
    $PY bench/server.py start "${args[@]}" >/dev/null
    sleep 2
    (while true; do echo "$(date +%s) $(cat /proc/loadavg)"; sleep 1; done) > "bench/results/loadavg-$tag.txt" &
    sampler=$!
    spy=
    if [ -n "${BENCH_PYSPY:-}" ]; then
        pid=$($PY -c "import json;print(json.load(open('$INSTANCE/server.json'))['worker_pids'][0])")
        mkdir -p bench/results/profiles
        $PY -c "import time;print(time.monotonic())" > "bench/results/profiles/$tag.t0"
        taskset -c 1 .venv/bin/py-spy record --pid "$pid" --duration $((DURATION + 25)) --rate 50 --threads --idle \
            --nonblocking --format chrometrace -o "bench/results/profiles/$tag.json" >/dev/null 2>&1 &
        spy=$!
    fi
    echo "[stalls $(date +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)] $tag"
    taskset -c 1 $PY bench/loadgen.py --instance "$INSTANCE" --label "$tag" "${FLAGS[@]}" ward --members 100 \
        --rates "$RATE" --duration "$DURATION" | grep -E "rate|worst"
    [ -n "$spy" ] && wait "$spy"
    kill "$sampler"
    $PY bench/timeline.py "bench/results/ward-$tag.json" --monitor "bench/results/loopmon-$tag.jsonl" \
        --csv "bench/results/timeline-$tag.csv" --worst 5
done
