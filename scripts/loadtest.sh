#!/usr/bin/env bash
# Load test of `shotgrade serve` on loopback, bounded in time, and the `shotgrade score`
# baseline on the same images.
#
#   scripts/loadtest.sh                      # 60 s at concurrency 1, 8 and 32
#   DURATION=20 CONCURRENCY=8 SERVE_ARGS="--max-batch 1" scripts/loadtest.sh
#
# Environment: DURATION (s per run, 60), CONCURRENCY (comma list, 1,8,32), SERVE_ARGS (extra
# `serve` flags), WORK (folder for images and results, /tmp/shotgrade-loadtest), PORT (18080),
# COUNT (images, 200), SKIP_SCORE=1 (skip the baseline).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-60}
CONCURRENCY=${CONCURRENCY:-1,8,32}
WORK=${WORK:-/tmp/shotgrade-loadtest}
PORT=${PORT:-18080}
COUNT=${COUNT:-200}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/shotgrade
LOAD=$TARGET/release/shotgrade-loadtest

cargo build --release -q -p shotgrade-cli -p shotgrade-loadtest

# Real-looking uploads: composites with a longer side of 1000 px, 30 % degraded, JPEG 90.
if [ ! -f "$WORK/images/.complete" ]; then
    rm -rf "$WORK/images" && mkdir -p "$WORK"
    "$BIN" synth --out "$WORK/images" --count "$COUNT" --seed 9000 \
        --min-side 1000 --max-side 1000 --degrade-probability 0.3 --jpeg 90 >/dev/null
    touch "$WORK/images/.complete"
fi

if [ "${SKIP_SCORE:-0}" != 1 ]; then
    echo "== shotgrade score over the same $COUNT images (baseline)"
    /usr/bin/time -f "%e s wall, peak RSS %M KiB" "$BIN" score "$WORK"/images/*.jpg -q \
        -o "$WORK/score.jsonl" 2>&1 | tail -1 | tee "$WORK/score.time"
    awk -v n="$COUNT" '{printf "score: %.1f images/s\n", n / $1}' "$WORK/score.time"
fi

echo "== shotgrade serve ${SERVE_ARGS:-} on 127.0.0.1:$PORT"
# shellcheck disable=SC2086
"$BIN" serve --addr "127.0.0.1:$PORT" ${SERVE_ARGS:-} 2>"$WORK/serve.log" &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    sleep 0.1
done
"$LOAD" --url "http://127.0.0.1:$PORT" --images "$WORK/images" --concurrency "$CONCURRENCY" \
    --duration "$DURATION" --server-pid "$SERVER" --json "$WORK/load.json"
curl -s "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt"
grep -E '^shotgrade_(batch_size_(sum|count)|images_total)' "$WORK/metrics.txt" || true
kill -TERM "$SERVER"
wait "$SERVER"
trap - EXIT
echo "server exited $?; results in $WORK/load.json"
