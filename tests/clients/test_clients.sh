#!/usr/bin/env bash
# edmd against the clients people already use (tests/clients/, npm packages pinned in its
# package-lock.json; `cd tests/clients && npm ci` installs them):
#   openai_sdk.ts       the official openai SDK: tsc type-checks the calls as a TypeScript user
#                       writes them (strict, no casts), then the JavaScript it makes runs them:
#                       images.generate (prompt as class name, n, size, response_format
#                       b64_json and url, output_format, quality/style/user), models.list,
#                       models.retrieve, and the SDK's error classes with OpenAI's fields
#   eventsource.test.mjs  the standard EventSource client on a job's events: completed fires
#                       exactly once in 10 s, ids, resume with Last-Event-ID, 204 after the end
#   openapi.test.mjs    swagger-parser on the served OpenAPI document
# Serves the bundled MNIST model (a copy whose default is 6 steps, to keep the test short) and
# a second daemon with an API key. Skipped, saying why, without node or the npm packages.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
EDMD=${EDMD:-$BUILD/edmd}
DIR=tests/clients
T_PASS=0 T_FAIL=0 T_SKIP=0
TMP=$(mktemp -d /tmp/edm-clients.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$TMP" "$DIR/out"
}
trap cleanup EXIT
pass() { T_PASS=$((T_PASS + 1)); }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL: $*"; }
skip() { T_SKIP=$((T_SKIP + 1)); echo "SKIP: $*"; }
finish() {
    echo "$T_PASS passed, $T_FAIL failed, $T_SKIP skipped"
    [ "$T_FAIL" -eq 0 ]
    exit $?
}

missing=""
[ -x "$EDMD" ] || missing="$missing $EDMD (make)"
if command -v node >/dev/null; then
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] 2>/dev/null || missing="$missing node>=20 (found $(node --version))"
else
    missing="$missing node>=20 (apt-get install nodejs npm)"
fi
for p in openai eventsource typescript @apidevtools/swagger-parser; do
    [ -f "$DIR/node_modules/$p/package.json" ] || missing="$missing $p"
done
case "$missing" in *" openai"* | *" eventsource"* | *typescript* | *swagger*) missing="$missing (cd $DIR && npm ci)" ;; esac
MNIST=models/mnist-edm.safetensors
[ -f "$MNIST" ] || missing="$missing $MNIST"
if [ -n "$missing" ]; then
    skip "client tests (openai SDK, TypeScript, EventSource, swagger-parser): missing$missing"
    finish
fi

# the bundled model with default_steps 6 in its metadata (tensors untouched)
python3 - "$MNIST" "$TMP/mnist-edm.safetensors" <<'PY' || { fail "copy of $MNIST"; finish; }
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
header["__metadata__"]["default_steps"] = "6"
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
PY

# start_edmd NAME [options]: sets URL_<NAME>
start_edmd() {
    local name=$1; shift
    "$EDMD" --host 127.0.0.1 --port 0 --port-file "$TMP/$name.port" --access-log "$TMP/$name.access" \
        --backend "${EDMD_TEST_BACKEND:-cpu}" --compute-threads "${EDMD_TEST_THREADS:-1}" "$@" >"$TMP/$name.log" 2>&1 &
    local pid=$! i
    PIDS+=("$pid")
    eval "PID_$name=$pid"
    for i in $(seq 1 300); do
        if [ -s "$TMP/$name.port" ] && curl -fs -o /dev/null "http://127.0.0.1:$(cat "$TMP/$name.port")/readyz"; then
            eval "URL_$name=http://127.0.0.1:$(cat "$TMP/$name.port")"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$TMP/$name.log"
    return 1
}
stop_edmd() {
    local pid rc=0
    eval "pid=\$PID_$1"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" || rc=$?
    if [ "$rc" -eq 0 ]; then pass; else fail "edmd ($1) exited $rc after SIGTERM"; fi
}

# run NAME COMMAND...: one client program; its closing line adds to the tally
run() {
    local name=$1; shift
    "$@" >"$TMP/$name.out" 2>&1
    local rc=$? line p f s
    grep -E '^(FAIL|SKIP)' "$TMP/$name.out"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$TMP/$name.out" | tail -n 1)
    if [ -z "$line" ]; then
        fail "$name gave no result (exit $rc)"
        tail -n 20 "$TMP/$name.out"
        return
    fi
    read -r p _ f _ s _ <<<"${line//,/}"
    T_PASS=$((T_PASS + p)) T_FAIL=$((T_FAIL + f)) T_SKIP=$((T_SKIP + s))
    [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || fail "$name exited $rc"
    echo "$name: $line"
}

API_KEY=client-test-key-$RANDOM$RANDOM
start_edmd main --model "$TMP/mnist-edm.safetensors" --max-n 8 || { fail "edmd start"; finish; }
start_edmd keyed --model "$TMP/mnist-edm.safetensors" --api-key "$API_KEY" || { fail "edmd start (api key)"; finish; }

# TypeScript: the SDK calls type-check as written, then run
if (cd "$DIR" && node_modules/.bin/tsc -p . --noEmit) >"$TMP/tsc.out" 2>&1; then
    pass
    echo "tsc: openai_sdk.ts type-checks (strict)"
else
    fail "tsc: openai_sdk.ts does not type-check"
    head -n 20 "$TMP/tsc.out"
fi
(cd "$DIR" && node_modules/.bin/tsc -p . --noEmitOnError false) >/dev/null 2>&1
if [ -f "$DIR/out/openai_sdk.js" ]; then
    run openai_sdk env EDMD_URL="$URL_main" KEYED_URL="$URL_keyed" API_KEY="$API_KEY" MODEL=mnist-edm \
        timeout -k 5 120 node "$DIR/out/openai_sdk.js"
else
    fail "tsc emitted no out/openai_sdk.js"
fi
run eventsource env EDMD_URL="$URL_main" STEPS=6 timeout -k 5 60 node "$DIR/eventsource.test.mjs"
run openapi env EDMD_URL="$URL_main" timeout -k 5 30 node "$DIR/openapi.test.mjs"

stop_edmd main
stop_edmd keyed
finish
