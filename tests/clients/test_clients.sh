#!/usr/bin/env bash
# edmd against the clients people already use (tests/clients/, npm packages pinned in its
# package-lock.json; `cd tests/clients && npm ci` installs them):
#   openai_sdk.mts      the official openai SDK: tsc type-checks the calls as a TypeScript user
#                       writes them (strict, no casts), then the JavaScript it makes runs them:
#                       images.generate (prompt as class name, n, size, response_format
#                       b64_json and url, output_format, quality/style/user), images.edit
#                       (inpainting with both mask conventions: the known half unchanged) and
#                       images.createVariation, models.list, models.retrieve, API keys, and the
#                       SDK's error classes with OpenAI's fields
#   eventsource.test.mjs  the standard EventSource client on a job's events: completed fires
#                       exactly once in 10 s, ids, resume with Last-Event-ID, 204 after the end
#   openapi.test.mjs    swagger-parser on the served OpenAPI document
# Serves the bundled MNIST model (a copy whose default is 6 steps, to keep the test short),
# then the same with an API key. Skipped, saying why, without node or the npm packages.
source "$(dirname "$0")/../server/lib.sh"
DIR=tests/clients

missing=""
[ -x "$EDMD" ] || missing="$missing $EDMD (make)"
if command -v node >/dev/null; then
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] 2>/dev/null || missing="$missing node>=20 (found $(node --version))"
else
    missing="$missing node>=20 (apt-get install nodejs npm)"
fi
npm_missing=""
for p in openai eventsource typescript @apidevtools/swagger-parser; do
    [ -f "$DIR/node_modules/$p/package.json" ] || npm_missing="$npm_missing $p"
done
[ -z "$npm_missing" ] || missing="$missing$npm_missing (cd $DIR && npm ci)"
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

# run NAME COMMAND...: one client program; its closing line adds to the tally
run() {
    local name=$1; shift
    "$@" >"$TMP/$name.out" 2>&1
    local rc=$? line p f s
    grep -E '^(FAIL|SKIP)' "$TMP/$name.out" >&2
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$TMP/$name.out" | tail -n 1)
    if [ -z "$line" ]; then
        fail "$name gave no result (exit $rc): $(tail -n 20 "$TMP/$name.out")"
        return
    fi
    read -r p _ f _ s _ <<<"${line//,/}"
    T_PASS=$((T_PASS + p)) T_FAIL=$((T_FAIL + f)) T_SKIP=$((T_SKIP + s))
    [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || fail "$name exited $rc"
    echo "$name: $line"
}

# TypeScript: the SDK calls type-check as written; the JavaScript tsc makes of them runs (out
# of the tree, finding the packages through a link)
if (cd "$DIR" && node_modules/.bin/tsc -p . --noEmit) >"$TMP/tsc.out" 2>&1; then
    pass
    echo "tsc: openai_sdk.mts type-checks (strict)"
else
    fail "tsc: openai_sdk.mts does not type-check: $(head -n 20 "$TMP/tsc.out")"
fi
ln -s "$PWD/$DIR/node_modules" "$TMP/node_modules"
(cd "$DIR" && node_modules/.bin/tsc -p . --noEmitOnError false --outDir "$TMP/js") >/dev/null 2>&1
SDK=$TMP/js/openai_sdk.mjs
[ -f "$SDK" ] || fail "tsc made no $SDK"

python3 tests/cli/img2img_check.py pngs "$TMP" || fail "test PNGs" # digit.png, mask.png, mask_alpha.png
srv_start clients --model "$TMP/mnist-edm.safetensors" --max-n 8 || { fail "edmd start"; finish; }
[ -f "$SDK" ] && run openai_sdk env EDMD_URL="$SRV_URL" MODEL=mnist-edm DIGIT_B64="$(base64 -w0 "$TMP/digit.png")" \
    MASK_B64="$(base64 -w0 "$TMP/mask.png")" MASK_ALPHA_B64="$(base64 -w0 "$TMP/mask_alpha.png")" timeout -k 5 120 node "$SDK"
run eventsource env EDMD_URL="$SRV_URL" STEPS=6 timeout -k 5 60 node "$DIR/eventsource.test.mjs"
run openapi env EDMD_URL="$SRV_URL" timeout -k 5 30 node "$DIR/openapi.test.mjs"
check "stop exits 0" srv_stop

API_KEY=client-test-key-$RANDOM$RANDOM
srv_start keyed --model "$TMP/mnist-edm.safetensors" --api-key "$API_KEY" || { fail "edmd start (api key)"; finish; }
[ -f "$SDK" ] && run openai_sdk_key env KEYED_URL="$SRV_URL" API_KEY="$API_KEY" MODEL=mnist-edm timeout -k 5 60 node "$SDK"
check "stop exits 0" srv_stop
finish
