#!/usr/bin/env bash
# make bench-server: edmd's HTTP throughput against the engine's own, on a small model.
#
# Starts $BUILD/edmd (continuous batching, max batch $MAX_BATCH) and drives it with
# bench/server_load.c (closed loop, keep-alive, $CLIENTS concurrent clients, one image per
# request) for $SECONDS_PER_RUN s each after a warm-up. For each client count it prints images/s,
# p50/p99 latency, the mean batch size (from /metrics), the request-handling overhead per
# image, and the ratio of HTTP images/s to `edm sample` images/s at that same batch size
# (the engine alone, same model, steps and threads). Results also go to
# $BUILD/bench/server.json.
#
# Request-handling cost is also measured as CPU time, which the other processes of a busy
# machine do not inflate: the daemon's threads are named (MHD-worker: HTTP and JSON;
# edmd-encode: PNG; edmd-worker and the BLAS pool: compute), and /proc gives each one's CPU
# time; a last run on the smallest test model with 2 steps maximises requests per second.
#
# Throughput is the steady-state rate of completions per client (see server_load.c): at 64
# clients the images finish in waves, one batch time apart, so the run must hold at least
# three waves per client; when it does not, the plain window count is used and said so.
#
# Environment: MODEL (default models/mnist-edm.safetensors, else the 16x16x3 test model),
# STEPS (8), SECONDS_PER_RUN (30), WARMUP (2), CLIENTS ("1 8 64"), MAX_BATCH (64),
# COMPUTE_THREADS (0 = all cores), HTTP_THREADS (4).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
EDMD=$BUILD/edmd
EDM=$BUILD/edm
if [ -z "${MODEL:-}" ]; then
    MODEL=tests/vectors/edm_songunet_ddpmpp/model.safetensors
    [ -f models/mnist-edm.safetensors ] && MODEL=models/mnist-edm.safetensors
fi
STEPS=${STEPS:-8}
SECS=${SECONDS_PER_RUN:-30}  # (not SECONDS: bash keeps its own clock there)
WARMUP=${WARMUP:-2}
CLIENTS=${CLIENTS:-"1 8 64"}
MAX_BATCH=${MAX_BATCH:-64}
COMPUTE_THREADS=${COMPUTE_THREADS:-0}
HTTP_THREADS=${HTTP_THREADS:-4}
OUT=$BUILD/bench
mkdir -p "$OUT"
for f in "$EDMD" "$EDM" "$MODEL"; do
    [ -e "$f" ] || { echo "bench-server: $f missing (run make; set MODEL)" >&2; exit 1; }
done
cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE bench/server_load.c -lcurl -lpthread -o "$OUT/server_load"

TMP=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
"$EDMD" --model "$MODEL" --host 127.0.0.1 --port 0 --port-file "$TMP/port" --max-batch "$MAX_BATCH" \
    --max-queue 4096 --threads "$HTTP_THREADS" --compute-threads "$COMPUTE_THREADS" --access-log off \
    >"$TMP/edmd.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do [ -s "$TMP/port" ] && curl -fs -o /dev/null "http://127.0.0.1:$(cat "$TMP/port")/readyz" && break; sleep 0.05; done
URL=http://127.0.0.1:$(cat "$TMP/port")
metric() { curl -s "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
TICK_MS=$(awk "BEGIN { print 1000 / $(getconf CLK_TCK) }")
cpu() { # CPU ticks of the daemon's threads: "http encode compute"
    local http=0 enc=0 comp=0 t comm ticks
    for t in /proc/"$PID"/task/*; do
        comm=$(cat "$t/comm" 2>/dev/null) || continue
        ticks=$(awk '{ print $14 + $15 }' "$t/stat" 2>/dev/null) || continue
        case $comm in
        MHD-*) http=$((http + ticks)) ;;
        edmd-encode*) enc=$((enc + ticks)) ;;
        *) [ "${t##*/}" = "$PID" ] && http=$((http + ticks)) || comp=$((comp + ticks)) ;;
        esac
    done
    echo "$http $enc $comp"
}
BODY="{\"steps\": $STEPS}"
nfe=$(curl -s -X POST "$URL/v1/images/generations" -H 'Content-Type: application/json' -d "$BODY" | jq .nfe)

echo "edmd bench: $(grep 'ready:' "$TMP/edmd.log" | sed 's/^edmd: ready: //')"
echo "model $MODEL, $STEPS steps ($nfe NFE per image), one image per request, ${SECS}s per run after ${WARMUP}s warm-up"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %10s %9s %9s %11s %13s %12s %7s %14s %16s %10s\n' clients "images/s" "p50 ms" "p99 ms" "mean batch" "latency ovh" "engine img/s" ratio "modal b: ratio" "CPU ms/img h+e" "CPU ratio"
results="["
for c in $CLIENTS; do
    e0=$(metric edm_denoiser_evaluations_total); b0=$(metric edm_denoiser_batches_total)
    hist0=$(curl -s "$URL/metrics" | grep '^edm_batch_size_bucket')
    read -r h0 n0 c0 <<<"$(cpu)"; i0=$(metric 'edm_images_total{outcome="completed"}')
    load=$("$OUT/server_load" "$URL/v1/images/generations" "$c" "$SECS" "$BODY" "$WARMUP") || true
    e1=$(metric edm_denoiser_evaluations_total); b1=$(metric edm_denoiser_batches_total)
    hist1=$(curl -s "$URL/metrics" | grep '^edm_batch_size_bucket')
    read -r h1 n1 c1 <<<"$(cpu)"; i1=$(metric 'edm_images_total{outcome="completed"}')
    # the batch size that carried most images in this run (histogram bucket, capped at max-batch)
    modal=$(paste <(echo "$hist0") <(echo "$hist1") | awk -v mb="$MAX_BATCH" '{
        le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le); c = $4 - $2 - prev; prev = $4 - $2
        if (le == "+Inf") le = 1e9; if (le + 0 > mb) le = mb
        if (c * le > best) { best = c * le; modal = le } } END { print modal + 0 }')
    imgs=$((i1 - i0)); [ $imgs -gt 0 ] || imgs=1
    cpu_http=$(awk "BEGIN { printf \"%.3f\", ($h1 - $h0) * $TICK_MS / $imgs }")
    cpu_enc=$(awk "BEGIN { printf \"%.3f\", ($n1 - $n0) * $TICK_MS / $imgs }")
    cpu_comp=$(awk "BEGIN { printf \"%.2f\", ($c1 - $c0) * $TICK_MS / $imgs }")
    mean_batch=$(awk "BEGIN { printf \"%.2f\", ($e1 - $e0) / (($b1 - $b0) > 0 ? ($b1 - $b0) : 1) }")
    batch=$(awk "BEGIN { b = int($mean_batch + 0.5); print (b < 1 ? 1 : b) }")
    # the engine alone at the same batch size (the mean; and the size that carried most
    # images, when that differs: the engine's cost per image is not monotonic in the batch)
    engine() { # batch -> "images/s cpu_ms_per_image" of edm sample alone
        local b=$1 n=$(($1 * 3)) TIMEFORMAT='%U %S'
        [ $n -lt 12 ] && n=12
        { time "$EDM" sample --model "$MODEL" --seeds "0-$((n - 1))" --steps "$STEPS" --batch "$b" \
            --threads "$COMPUTE_THREADS" --out "$TMP/x.npy" >"$TMP/eng.out" 2>&1; } 2>"$TMP/eng.time"
        echo "$(grep -o '[0-9.]* images/s' "$TMP/eng.out" | cut -d' ' -f1) $(awk -v n=$n '{ printf "%.3f", ($1 + $2) * 1000 / n }' "$TMP/eng.time")"
    }
    read -r eng eng_cpu <<<"$(engine "$batch")"
    eng_modal=$eng
    [ "$modal" -gt 0 ] && [ "$modal" != "$batch" ] && read -r eng_modal _ <<<"$(engine "$modal")"
    ips=$(jq .images_per_s <<<"$load")
    ratio=$(awk "BEGIN { printf \"%.3f\", $ips / $eng }")
    ratio_modal=$(awk "BEGIN { printf \"%.3f\", $ips / $eng_modal }")
    # the same comparison in CPU time, which a busy machine does not distort: the engine's CPU
    # per image over the daemon's (compute + HTTP + PNG) CPU per image
    cpu_ratio=$(awk "BEGIN { d = $cpu_comp + $cpu_http + $cpu_enc; printf \"%.3f\", (d > 0 ? $eng_cpu / d : 0) }")
    printf '%8d %10.3f %9.1f %9.1f %11s %10.3f ms %12.3f %7s %14s %16s %10s\n' "$c" "$ips" "$(jq .p50_ms <<<"$load")" \
        "$(jq .p99_ms <<<"$load")" "$mean_batch" "$(jq .overhead_ms_per_image <<<"$load")" "$eng" "$ratio" \
        "$modal: $ratio_modal" "$cpu_http+$cpu_enc" "$cpu_ratio"
    [ "$(jq .errors <<<"$load")" = 0 ] || echo "  ($(jq .errors <<<"$load") errors)"
    [ "$(jq -r .rate_from <<<"$load")" = cycles ] ||
        echo "  (images/s is the window count: too few completions per client; raise SECONDS_PER_RUN)"
    results="$results$(jq -c ". + {mean_batch: $mean_batch, engine_batch: $batch, engine_images_per_s: $eng, ratio: $ratio, modal_batch: $modal, engine_images_per_s_modal: $eng_modal, ratio_modal: $ratio_modal, engine_cpu_ms_per_image: $eng_cpu, cpu_ratio: $cpu_ratio, cpu_ms_per_image: {http: $cpu_http, png: $cpu_enc, compute: $cpu_comp}}" <<<"$load"),"
done
kill -TERM "$PID"; wait "$PID" || true; PID=""

# request-handling cost at a high request rate: the smallest model, 2 steps, 16 clients
TINY=tests/vectors/edm_songunet_gray8/model.safetensors
if [ -f "$TINY" ]; then
    rm -f "$TMP/port"
    "$EDMD" --model "$TINY" --host 127.0.0.1 --port 0 --port-file "$TMP/port" --max-batch 64 --max-queue 4096 \
        --threads "$HTTP_THREADS" --compute-threads "$COMPUTE_THREADS" --access-log off >"$TMP/edmd2.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 200); do [ -s "$TMP/port" ] && curl -fs -o /dev/null "http://127.0.0.1:$(cat "$TMP/port")/readyz" && break; sleep 0.05; done
    URL=http://127.0.0.1:$(cat "$TMP/port")
    read -r h0 n0 c0 <<<"$(cpu)"; i0=$(metric 'edm_images_total{outcome="completed"}')
    load=$("$OUT/server_load" "$URL/v1/images/generations" 16 "$SECS" '{"steps": 2}' "$WARMUP") || true
    read -r h1 n1 c1 <<<"$(cpu)"; i1=$(metric 'edm_images_total{outcome="completed"}')
    imgs=$((i1 - i0)); [ $imgs -gt 0 ] || imgs=1
    echo "request handling at a high rate ($TINY, 2 steps, 16 clients): $(jq .images_per_s <<<"$load") requests/s," \
        "CPU per image: HTTP+JSON $(awk "BEGIN { printf \"%.3f\", ($h1 - $h0) * $TICK_MS / $imgs }") ms," \
        "PNG $(awk "BEGIN { printf \"%.3f\", ($n1 - $n0) * $TICK_MS / $imgs }") ms," \
        "compute $(awk "BEGIN { printf \"%.3f\", ($c1 - $c0) * $TICK_MS / $imgs }") ms ($imgs images)"
    results="$results$(jq -c ". + {model: \"$TINY\", steps: 2, cpu_ms_per_image: {http: $(awk "BEGIN { print ($h1 - $h0) * $TICK_MS / $imgs }"), png: $(awk "BEGIN { print ($n1 - $n0) * $TICK_MS / $imgs }"), compute: $(awk "BEGIN { print ($c1 - $c0) * $TICK_MS / $imgs }")}}" <<<"$load"),"
    kill -TERM "$PID"; wait "$PID" || true; PID=""
fi
echo "${results%,}]" | jq . >"$OUT/server.json"
echo "latency ovh: client latency minus the server's queue and sampling time (HTTP, JSON, job setup, PNG, base64,"
echo "  thread hand-offs), per image; CPU ms/img h+e: CPU time of the HTTP threads + the PNG encoders per image;"
echo "  modal b: the batch size that carried most images, and the ratio to the engine at that size;"
echo "  CPU ratio: edm sample's CPU time per image (mean batch) / the daemon's (compute + HTTP + PNG) CPU per image"
echo "results: $OUT/server.json"
