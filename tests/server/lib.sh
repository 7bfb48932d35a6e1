# lib.sh - shared helpers of the edmd integration tests (sourced, not run).
#
# Each test script starts the real daemon on 127.0.0.1 port 0 (the bound port comes back
# through --port-file), drives it with curl, and ends with one line
# "N passed, N failed, N skipped". srv_stop sends SIGTERM and checks the exit status is 0.
#
#   srv_start NAME [edmd options...]   start (waits for /readyz); sets SRV_URL, SRV_PID
#   srv_stop                           SIGTERM, wait, check exit 0
#   check DESC COND...                 runs COND (a command); counts a pass or a failure
#   eq DESC GOT WANT                   string equality
#   skip DESC
#   finish                             prints the closing line, exits 1 on failures
#   need_mnist / need_pngs             the bundled model in MNIST / the test PNGs in $P (or skip)
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build}
EDMD=${EDMD:-$BUILD/edmd}
T_PASS=0 T_FAIL=0 T_SKIP=0
TMP=$(mktemp -d /tmp/edmd-test.XXXXXX)
SRV_PID=""
SRV_URL=""
# small random-weight models that come with the conformance vectors
MODEL_FAST=tests/vectors/edm_songunet_gray8/model.safetensors      # 8x8x1, unconditional
MODEL_RGB=tests/vectors/edm_songunet_ddpmpp/model.safetensors      # 16x16x3, unconditional
MODEL_COND=tests/vectors/vp_songunet_1level_gray/model.safetensors # label_dim 3

cleanup() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then kill -KILL "$SRV_PID" 2>/dev/null; fi
    [ -n "${KEEP_TMP:-}" ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT

pass() { T_PASS=$((T_PASS + 1)); }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL: $*" >&2; }
skip() { T_SKIP=$((T_SKIP + 1)); echo "SKIP: $*" >&2; }
check() {
    local desc=$1; shift
    if "$@"; then pass; else fail "$desc"; fi
}
eq() {
    if [ "$2" = "$3" ]; then pass; else fail "$1: got '$2', want '$3'"; fi
}
finish() {
    echo "$T_PASS passed, $T_FAIL failed, $T_SKIP skipped"
    [ "$T_FAIL" -eq 0 ]
    exit $?
}

need_daemon() {
    if [ ! -x "$EDMD" ]; then
        skip "$EDMD not built"
        finish
    fi
    local m
    for m in "$MODEL_FAST" "$MODEL_RGB" "$MODEL_COND"; do
        if [ ! -f "$m" ]; then
            skip "test model $m missing"
            finish
        fi
    done
}

# srv_start NAME [options]: logs in $TMP/NAME.log, access log in $TMP/NAME.access
# (the daemon is a background job: wait for other jobs by pid, never with a bare `wait`).
# The timing of the tests assumes the CPU backend (EDMD_TEST_BACKEND, default cpu) with
# EDMD_TEST_THREADS compute threads (default 1).
srv_start() {
    local name=$1; shift
    rm -f "$TMP/port"
    SRV_LOG=$TMP/$name.log
    "$EDMD" --host 127.0.0.1 --port 0 --port-file "$TMP/port" --access-log "$TMP/$name.access" \
        --backend "${EDMD_TEST_BACKEND:-cpu}" --compute-threads "${EDMD_TEST_THREADS:-1}" "$@" >"$SRV_LOG" 2>&1 &
    SRV_PID=$!
    local i
    for i in $(seq 1 300); do
        if [ -s "$TMP/port" ]; then
            SRV_URL="http://127.0.0.1:$(cat "$TMP/port")"
            if curl -fs -o /dev/null "$SRV_URL/readyz"; then return 0; fi
        fi
        if ! kill -0 "$SRV_PID" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "edmd did not become ready:" >&2
    cat "$SRV_LOG" >&2
    return 1
}

# srv_stop: SIGTERM and wait; returns the exit status (0 expected)
srv_stop() {
    [ -n "$SRV_PID" ] || return 0
    kill -TERM "$SRV_PID" 2>/dev/null
    local rc=0
    wait "$SRV_PID" || rc=$?
    SRV_PID=""
    return $rc
}

# post PATH JSON [curl options]: prints the body, then the status on the last line
post() {
    local path=$1 body=$2; shift 2
    curl -s -w '\n%{http_code}' -X POST "$SRV_URL$path" -H 'Content-Type: application/json' -d "$body" "$@"
}
# status_of OUTPUT / body_of OUTPUT (from post/get)
status_of() { printf '%s\n' "$1" | tail -n 1; }
body_of() { printf '%s\n' "$1" | sed '$d'; }
get() { curl -s -w '\n%{http_code}' "$SRV_URL$1" "${@:2}"; }

# metric NAME{labels}: the value of one sample of /metrics (0 when absent)
metric() {
    curl -s "$SRV_URL/metrics" | awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }'
}

# pnginfo FILE: "W H C" of a PNG, decoding every pixel (fails on a corrupt file)
pnginfo() { python3 tests/server/pngtool.py info "$1"; }
# pngdiff A B: "pixels_differing max_abs_difference total_values"
pngdiff() { python3 tests/server/pngtool.py diff "$1" "$2"; }

# need_mnist: MNIST is the bundled model, else the script is skipped
need_mnist() {
    MNIST=models/mnist-edm.safetensors
    [ -f "$MNIST" ] || { skip "$MNIST missing"; finish; }
}
# need_pngs: the test PNGs of tests/cli/img2img_check.py in $P (digit.png, mask.png, ...)
need_pngs() {
    P=$TMP/png
    mkdir -p "$P"
    python3 tests/cli/img2img_check.py pngs "$P" || { fail "test PNGs"; finish; }
}
# b64_images JSON PREFIX: each data[i].b64_json of an Images response to PREFIX.i.png
b64_images() {
    local i n
    n=$(jq '.data | length' "$1" 2>/dev/null) || return 0
    for ((i = 0; i < ${n:-0}; i++)); do
        jq -r ".data[$i].b64_json // empty" "$1" >"$2.$i.b64"
        [ -s "$2.$i.b64" ] && python3 tests/server/pngtool.py b64 "$2.$i.b64" "$2.$i.png"
    done
}
