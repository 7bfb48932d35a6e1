#!/usr/bin/env bash
# The web page of edmd in a real browser: starts $BUILD/edmd on a free loopback port with
# small test models (and a second one with an API key), then web.test.mjs drives headless
# Chromium (Debian's chromium) with playwright-core: load /, generate n=2 with 4 steps, wait
# for the images, compare what the page shows with GET /v1/jobs/{id}, check the PNGs, the
# progress, an API error, cancel, and the API-key flow; then, with the bundled MNIST model,
# draw half a seven on the canvas, mask the lower half and let the model finish it (the
# request's PNGs, the kept half pixel for pixel, "Use as input"); screenshots go to
# $BUILD/web/. Ends with SIGTERM to each daemon and checks exit status 0.
#
# Needs: chromium (apt-get install chromium), node and playwright-core (npm ci in tests/web).
# Without them the test is skipped (exit 0).
# WEB_DEV=1: serve server/web/ from the working tree (tests/web/devserver.mjs) in front of edmd,
# to work on the page without rebuilding; the default loads the page from edmd itself.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
EDMD=${EDMD:-$BUILD/edmd}
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
OUT_DIR=$BUILD/web
T_PASS=0 T_FAIL=0 T_SKIP=0
TMP=$(mktemp -d /tmp/edm-web-test.XXXXXX)
PIDS=()
MODEL_COND=tests/vectors/vp_songunet_1level_gray/model.safetensors # 8x8x1, label_dim 3
MODEL_RGB=tests/vectors/edm_songunet_ddpmpp/model.safetensors      # 16x16x3, unconditional
MODEL_MNIST=models/mnist-edm.safetensors                           # 32x32x1, classes 0-9

pass() { T_PASS=$((T_PASS + 1)); }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL: $*"; }
skip() { T_SKIP=$((T_SKIP + 1)); echo "SKIP: $*"; }
finish() {
    echo "$T_PASS passed, $T_FAIL failed, $T_SKIP skipped"
    [ "$T_FAIL" -eq 0 ]
    exit $?
}
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- prerequisites: skip (not fail) when the browser tooling is not installed -------------
missing=""
[ -x "$EDMD" ] || missing="$missing $EDMD (make)"
[ -n "$CHROMIUM" ] && [ -x "$CHROMIUM" ] || missing="$missing chromium (apt-get install chromium)"
if command -v node >/dev/null; then
    node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    [ "$node_major" -ge 20 ] 2>/dev/null || missing="$missing node>=20 (playwright-core; found $(node --version))"
else
    missing="$missing node>=20 (apt-get install nodejs npm)"
fi
[ -f tests/web/node_modules/playwright-core/package.json ] || missing="$missing playwright-core (cd tests/web && npm ci)"
for m in "$MODEL_COND" "$MODEL_RGB"; do [ -f "$m" ] || missing="$missing $m"; done
if [ -n "$missing" ]; then
    skip "web page browser test: missing$missing"
    finish
fi

# start_edmd NAME [options]: sets URL_<NAME> and appends the pid to PIDS
start_edmd() {
    local name=$1; shift
    "$EDMD" --host 127.0.0.1 --port 0 --port-file "$TMP/$name.port" --access-log "$TMP/$name.access" \
        --compute-threads "${EDMD_TEST_THREADS:-1}" "$@" >"$TMP/$name.log" 2>&1 &
    local pid=$! i
    PIDS+=("$pid")
    eval "PID_$name=$pid"
    for i in $(seq 1 200); do
        if [ -s "$TMP/$name.port" ]; then
            local url="http://127.0.0.1:$(cat "$TMP/$name.port")"
            if curl -fs -o /dev/null "$url/readyz"; then
                eval "URL_$name=$url"
                return 0
            fi
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "edmd ($name) did not become ready:"
    cat "$TMP/$name.log"
    return 1
}

# stop_edmd NAME: SIGTERM, wait, exit status 0
stop_edmd() {
    local name=$1 pid rc=0
    eval "pid=\${PID_$name:-}"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" || rc=$?
    if [ "$rc" -eq 0 ]; then pass; else fail "edmd ($name) exited $rc after SIGTERM"; tail -n 20 "$TMP/$name.log"; fi
}

API_KEY=web-test-key-$RANDOM$RANDOM
MNIST_ARGS=() MNIST_ID=
if [ -f "$MODEL_MNIST" ]; then MNIST_ARGS=(--model mnist="$MODEL_MNIST") MNIST_ID=mnist; fi
start_edmd main --model cond="$MODEL_COND" --model rgb="$MODEL_RGB" "${MNIST_ARGS[@]}" || { fail "edmd start"; finish; }
start_edmd keyed --model cond="$MODEL_COND" --api-key "$API_KEY" || { fail "edmd start (api key)"; finish; }

# ---- the page is served by edmd itself, byte for byte the files of server/web/ ------------------
WEB_URL=$URL_main/ KEY_WEB_URL=$URL_keyed/
ct=$(curl -s -o "$TMP/index" -w '%{http_code} %{content_type}' "$URL_main/")
use_dev=${WEB_DEV:-0}
if [[ "$ct" == "200 text/html"* ]]; then pass; else
    fail "GET / on edmd: $ct (want 200 text/html)"
    echo "edmd does not serve the page: the browser part runs on server/web/ through tests/web/devserver.mjs"
    use_dev=1
fi
for f in server/web/*; do
    name=${f#server/web/}
    got=$(curl -s -o "$TMP/asset" -w '%{http_code}' "$URL_main/$name")
    if [ "$got" = 200 ] && cmp -s "$TMP/asset" "$f"; then pass; else fail "GET /$name on edmd ($got) is not server/web/$name"; fi
done
if cmp -s "$TMP/index" server/web/index.html; then pass; else fail "GET / on edmd is not server/web/index.html"; fi
# the page and its files need no key (the API does)
got=$(curl -s -o /dev/null -w '%{http_code}' "$URL_keyed/")
if [ "$got" = 200 ]; then pass; else fail "GET / on a daemon with API keys: $got (want 200: the page itself needs no key)"; fi

if [ "$use_dev" = 1 ]; then
    echo "the page comes from web/ through tests/web/devserver.mjs"
    node tests/web/devserver.mjs "$URL_main" "$TMP/dev.port" >"$TMP/dev.log" 2>&1 &
    PIDS+=($!) DEV_PID=$!
    node tests/web/devserver.mjs "$URL_keyed" "$TMP/devk.port" >"$TMP/devk.log" 2>&1 &
    PIDS+=($!) DEVK_PID=$!
    for i in $(seq 1 100); do [ -s "$TMP/dev.port" ] && [ -s "$TMP/devk.port" ] && break; sleep 0.05; done
    WEB_URL=http://127.0.0.1:$(cat "$TMP/dev.port")/ KEY_WEB_URL=http://127.0.0.1:$(cat "$TMP/devk.port")/
fi

# ---- the browser -----------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
WEB_URL=$WEB_URL API_URL=$URL_main COND_MODEL=cond RGB_MODEL=rgb MNIST_MODEL=$MNIST_ID KEY_WEB_URL=$KEY_WEB_URL KEY_API_URL=$URL_keyed \
    API_KEY=$API_KEY OUT_DIR=$OUT_DIR CHROMIUM=$CHROMIUM \
    timeout -k 5 55 node tests/web/web.test.mjs >"$TMP/browser.log" 2>&1
rc=$?
grep -E '^(FAIL|SKIP)' "$TMP/browser.log"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$TMP/browser.log" | tail -n 1)
if [ -n "$line" ]; then
    read -r p _ f _ s _ <<<"${line//,/}"
    T_PASS=$((T_PASS + p)) T_FAIL=$((T_FAIL + f)) T_SKIP=$((T_SKIP + s))
    echo "browser: $line"
else
    fail "browser test gave no result (exit $rc)"
    tail -n 30 "$TMP/browser.log"
fi
[ "$rc" -eq 0 ] || [ "${f:-0}" -gt 0 ] || fail "browser test exited $rc"
[ -f "$OUT_DIR/phone-375x812.png" ] && echo "screenshot: $OUT_DIR/phone-375x812.png"

[ -n "${DEV_PID:-}" ] && kill -TERM "$DEV_PID" "$DEVK_PID" 2>/dev/null
stop_edmd main
stop_edmd keyed
finish
