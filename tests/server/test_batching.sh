#!/usr/bin/env bash
# Step-level continuous batching, seen from outside:
#  - an image is the same alone and amid concurrent load (the seed fixes all its noise);
#    the exact difference is printed (bit-identical, or how many uint8 levels on how many
#    pixels) and must be at most one level on under 1% of the values;
#  - requests with different step counts, solvers, stochastic settings, classes and n share
#    network evaluations (their batch figures exceed their own n; /metrics shows batches of
#    more than one image, and fewer batches than evaluations);
#  - every image costs exactly its own NFE: the evaluations counted by /metrics equal the sum
#    of n * nfe over the requests;
#  - a request that arrives while a long one runs joins at the next tick (it finishes long
#    before the long one, after a short queue wait);
#  - two models are served side by side (one model per batch).
source "$(dirname "$0")/lib.sh"
need_daemon
srv_start batch --model rgb="$MODEL_RGB" --model cond="$MODEL_COND" --model fast="$MODEL_FAST" --max-batch 16 --max-steps 10000 \
    || { fail "daemon start"; finish; }

b64png() { jq -r ".data[$2].b64_json" "$1" >"$1.b64" && python3 tests/server/pngtool.py b64 "$1.b64" "$3"; }
PIDS=()
gen() { # file body: synchronous request in the background
    curl -s -o "$1" -X POST "$SRV_URL/v1/images/generations" -H 'Content-Type: application/json' -d "$2" &
    PIDS+=($!)
}
wait_all() { wait "${PIDS[@]}"; PIDS=(); }

# ---- alone -------------------------------------------------------------------------------
post /v1/images/generations '{"model": "rgb", "seed": 1234, "steps": 8}' | sed '$d' >"$TMP/alone.json"
b64png "$TMP/alone.json" 0 "$TMP/alone.png"
eq "alone: batch of one" "$(jq -c .batch "$TMP/alone.json")" '{"mean_size":1,"max_size":1}'
post /v1/images/generations '{"model": "cond", "seed": 77, "class_label": 2, "steps": 6}' | sed '$d' >"$TMP/alone_c.json"
b64png "$TMP/alone_c.json" 0 "$TMP/alone_c.png"

ev0=$(metric edm_denoiser_evaluations_total)
b0=$(metric edm_denoiser_batches_total)

# ---- amid load: mixed steps, solvers, churn, classes, n, models ---------------------------
# Enough steps that the load is still running when the probes arrive, on a fast machine too.
bodies=(
    '{"model": "rgb", "seed": 1, "steps": 100}'
    '{"model": "rgb", "seed": 2, "steps": 60, "solver": "euler"}'
    '{"model": "rgb", "n": 3, "seed": 3, "steps": 80, "S_churn": 40, "S_min": 0.05, "S_max": 50}'
    '{"model": "rgb", "seed": 4, "steps": 70, "rho": 3, "sigma_max": 60}'
    '{"model": "cond", "seed": 5, "class_label": 0, "steps": 60}'
    '{"model": "cond", "n": 2, "seed": 6, "class_labels": [1, 2], "steps": 90, "solver": "euler"}'
    '{"model": "rgb", "seed": 7, "steps": 100, "disc": "vp", "schedule": "vp", "scaling": "vp"}'
    '{"model": "fast", "n": 4, "seed": 8, "steps": 70}'
    '{"model": "rgb", "n": 2, "seed": 9, "steps": 50}'
)
i=0
for b in "${bodies[@]}"; do gen "$TMP/load$i.json" "$b"; i=$((i + 1)); done
sleep 0.3 # the probes arrive while the others are mid-way
gen "$TMP/probe.json" '{"model": "rgb", "seed": 1234, "steps": 8}'
gen "$TMP/probe_c.json" '{"model": "cond", "seed": 77, "class_label": 2, "steps": 6}'
wait_all

ok=1
for f in "$TMP"/load*.json "$TMP/probe.json" "$TMP/probe_c.json"; do
    jq -e '.data | length > 0' "$f" >/dev/null || { ok=0; echo "bad response in $f: $(head -c 300 "$f")" >&2; }
done
check "every request under load completed" test $ok -eq 1

b64png "$TMP/probe.json" 0 "$TMP/probe.png"
b64png "$TMP/probe_c.json" 0 "$TMP/probe_c.png"
for pair in "alone probe" "alone_c probe_c"; do
    set -- $pair
    d=$(pngdiff "$TMP/$1.png" "$TMP/$2.png")
    read -r ndiff maxd total <<<"$d"
    if cmp -s "$TMP/$1.png" "$TMP/$2.png"; then
        echo "same seed alone vs amid load ($2): bit-identical PNGs ($total values)"
    else
        echo "same seed alone vs amid load ($2): $ndiff of $total values differ, by at most $maxd uint8 level(s)"
    fi
    check "same seed alone and amid load ($2): at most 1 level on <1% of values" \
        test "$maxd" -le 1 -a $((ndiff * 100)) -lt "$total"
done
pb=$(jq -c '[.batch.max_size, (.batch.mean_size > 1)]' "$TMP/probe.json")
check "probe shared its batches ($pb)" test "$(jq '.batch.max_size > 1 and .batch.mean_size > 1' "$TMP/probe.json")" = true
check "cond probe shared its batches" test "$(jq '.batch.max_size > 1' "$TMP/probe_c.json")" = true
# different step counts / solvers / stochastic settings / classes shared evaluations
for k in 1 2 4 5 6; do
    check "request $k (${bodies[$k]}) shared batches beyond its own n" \
        test "$(jq '.batch.max_size > (.data | length)' "$TMP/load$k.json")" = true
done

ev1=$(metric edm_denoiser_evaluations_total)
b1=$(metric edm_denoiser_batches_total)
want=$(cat "$TMP"/load*.json "$TMP/probe.json" "$TMP/probe_c.json" | jq -s 'map(.data | map(.nfe) | add) | add')
eq "evaluations = sum of every image's NFE" "$((ev1 - ev0))" "$want"
echo "load: $((ev1 - ev0)) image evaluations in $((b1 - b0)) batches (mean batch $(awk "BEGIN {printf \"%.2f\", ($ev1 - $ev0) / ($b1 - $b0)}"))"
check "fewer batches than evaluations" test $((b1 - b0)) -lt $((ev1 - ev0))
check "histogram has batches above 1" test "$(metric 'edm_batch_size_bucket{le="1"}')" -lt "$(metric edm_batch_size_count)"
eq "NFE of the euler request = steps" "$(jq .nfe "$TMP/load1.json")" 60
eq "NFE of the heun request = 2*steps-1" "$(jq .nfe "$TMP/load0.json")" 199

# ---- 16 seeds alone vs the same 16 in one batch of 16 ------------------------------------
post /v1/images/generations '{"model": "rgb", "seeds": [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115], "steps": 6}' \
    | sed '$d' >"$TMP/b16.json"
eq "one batch of 16" "$(jq .batch.max_size "$TMP/b16.json")" 16
same=0 ndiff_all=0 max_all=0 total_all=0
for k in $(seq 0 15); do
    post /v1/images/generations "{\"model\": \"rgb\", \"seed\": $((100 + k)), \"steps\": 6}" | sed '$d' >"$TMP/one.json"
    b64png "$TMP/one.json" 0 "$TMP/one.png"
    b64png "$TMP/b16.json" "$k" "$TMP/in16.png"
    cmp -s "$TMP/one.png" "$TMP/in16.png" && same=$((same + 1))
    read -r nd md tot <<<"$(pngdiff "$TMP/one.png" "$TMP/in16.png")"
    ndiff_all=$((ndiff_all + nd)); total_all=$((total_all + tot)); [ "$md" -gt "$max_all" ] && max_all=$md
done
echo "16 seeds alone vs in one batch of 16: $same/16 PNGs bit-identical; $ndiff_all of $total_all values differ, max $max_all level(s)"
check "batch of 16 vs alone: at most 1 level on <1% of values" test "$max_all" -le 1 -a $((ndiff_all * 100)) -lt "$total_all"

# ---- joining mid-flight ------------------------------------------------------------------
running() { [ "$(curl -s "$SRV_URL/v1/jobs/$1" | jq '.progress.steps_done > 2')" = true ]; }
until_running() { local i; for i in $(seq 1 400); do running "$1" && return 0; sleep 0.025; done; return 1; }
long=$(post /v1/jobs '{"model": "rgb", "seed": 50, "steps": 10000}' | sed '$d' | jq -r .id)
check "long job running" until_running "$long"
post /v1/images/generations '{"model": "rgb", "seed": 51, "steps": 3}' | sed '$d' >"$TMP/short.json"
long_state=$(curl -s "$SRV_URL/v1/jobs/$long" | jq -r .status)
q=$(jq .timings.queue_ms "$TMP/short.json")
echo "short request amid a long one: queue ${q} ms, total $(jq .timings.total_ms "$TMP/short.json") ms; the long job still $long_state"
check "the short request joined at the next tick (queue < 1 s)" awk "BEGIN {exit !($q < 1000)}"
eq "the short request finished first" "$long_state" running
eq "they shared every batch" "$(jq -c .batch "$TMP/short.json")" '{"mean_size":2,"max_size":2}'
curl -s -o /dev/null -X DELETE "$SRV_URL/v1/jobs/$long"

# ---- models take turns: a long job of one model does not hold up another model ----------
long=$(post /v1/jobs '{"model": "rgb", "seed": 60, "steps": 10000}' | sed '$d' | jq -r .id)
check "long job running" until_running "$long"
post /v1/images/generations '{"model": "fast", "seed": 61, "steps": 3}' | sed '$d' >"$TMP/other.json"
long_state=$(curl -s "$SRV_URL/v1/jobs/$long" | jq -r .status)
echo "other model amid a long job: total $(jq .timings.total_ms "$TMP/other.json") ms; the long job still $long_state"
eq "the other model's request finished first" "$long_state" running
eq "one model per batch (the other request's batches held only itself)" "$(jq .batch.max_size "$TMP/other.json")" 1
curl -s -o /dev/null -X DELETE "$SRV_URL/v1/jobs/$long"
idle() { [ "$(metric edm_images_in_flight)" -eq 0 ]; }
for _ in $(seq 1 100); do idle && break; sleep 0.05; done
check "no images left in flight" test "$(metric edm_images_in_flight)" -eq 0
check "stop exits 0" srv_stop
finish
