#!/usr/bin/env bash
# PNGs that reproduce themselves: every PNG (from edmd and from `edm sample --png-dir`) holds
# its complete resolved settings as JSON in its Request text chunk (model and the SHA-256 of
# its file, seed, class, every sampler setting with defaults filled in, the sigma range, NFE,
# version). POSTing that text back as it is must make the same pixels, for the default, a
# stochastic and an ablation sampler, on the bundled MNIST model (class names, conditional)
# and on an unconditional RGB test model; a text whose model file differs is refused.
source "$(dirname "$0")/lib.sh"
need_daemon
MNIST=models/mnist-edm.safetensors
[ -f "$MNIST" ] || { skip "$MNIST missing"; finish; }
srv_start rep --model "$MNIST" --model rgb="$MODEL_RGB" || { fail "daemon start"; finish; }
SHA=$(sha256sum "$MNIST" | cut -d' ' -f1)

# png NAME BODY: POST BODY, the PNG of its one image to $TMP/NAME.png (Accept: image/png)
png() {
    local code
    code=$(curl -s -o "$TMP/$1.png" -w '%{http_code}' -X POST "$SRV_URL/v1/images/generations" \
        -H 'Content-Type: application/json' -H 'Accept: image/png' --data-binary "$2")
    [ "$code" = 200 ] || { echo "POST $2: $code $(head -c 300 "$TMP/$1.png")" >&2; return 1; }
}
text() { python3 tests/server/pngtool.py text "$1" "$2"; }
same_pixels() { [ "$(pngdiff "$1" "$2" | cut -d' ' -f1-2)" = "0 0" ]; }

# roundtrip DESC BODY [JQ-CHECK]: the image of BODY, then its Request text POSTed back
roundtrip() {
    local desc=$1 body=$2 want=${3:-true}
    if ! png a "$body"; then fail "$desc: first image"; return; fi
    local req; req=$(text "$TMP/a.png" Request) || { fail "$desc: no Request text"; return; }
    check "$desc: Request is JSON with the resolved settings" jq -e "$want" <<<"$req" >/dev/null
    if ! png b "$req"; then fail "$desc: the Request text POSTed back is refused"; return; fi
    check "$desc: the same pixels" same_pixels "$TMP/a.png" "$TMP/b.png"
    eq "$desc: the same Request text" "$(text "$TMP/b.png" Request)" "$req"
}

every='has("model") and has("model_sha256") and has("seed") and has("class_label") and has("steps") and has("sigma_min") and has("sigma_max") and has("rho") and has("S_churn") and has("S_min") and has("S_max") and has("S_noise") and has("nfe") and has("edm_serve_version")'
roundtrip "default" '{"seed": 5, "steps": 4}' \
    "$every and .model == \"mnist-edm\" and .model_sha256 == \"$SHA\" and .seed == 5 and (.class_label | type) == \"number\" and .sigma_min == 0.002 and .sigma_max == 80 and .nfe == 7 and .S_max == \"inf\" and (has(\"solver\") | not)"
roundtrip "stochastic" '{"seed": 11, "steps": 5, "prompt": "Seven", "S_churn": 10, "S_min": 0.05, "S_max": 50, "S_noise": 1.003, "sigma_max": 60, "rho": 5}' \
    "$every and .class_label == 7 and .S_churn == 10 and .S_noise == 1.003 and .sigma_max == 60 and .nfe == 9"
roundtrip "ablation euler" '{"seed": 12, "steps": 6, "class_label": 3, "solver": "euler", "disc": "vp", "schedule": "vp", "scaling": "vp"}' \
    "$every and .solver == \"euler\" and .disc == \"vp\" and .alpha == 1 and .nfe == 6 and .sigma_min != 0.002"
roundtrip "ablation heun alpha" '{"seed": 13, "steps": 4, "alpha": 0.5, "S_churn": 40, "disc": "iddpm"}' \
    "$every and .solver == \"heun\" and .disc == \"iddpm\" and .alpha == 0.5 and .nfe == 7"
roundtrip "unconditional RGB" '{"model": "rgb", "seed": 99, "steps": 3, "S_churn": 1}' \
    '.model == "rgb" and .class_label == null'
png a '{"seed": 5, "steps": 4}'
eq "the readable keys stay" "$(text "$TMP/a.png" Seed) $(text "$TMP/a.png" Steps) $(text "$TMP/a.png" Model)" "5 4 mnist-edm"

# a Request that does not fit: another file under the model's name, a changed nfe
req=$(text "$TMP/a.png" Request)
out=$(post /v1/images/generations "$(jq -c '.model_sha256 = "00"' <<<"$req")")
eq "another model file: 400 on model_sha256" "$(status_of "$out") $(body_of "$out" | jq -r .error.param)" "400 model_sha256"
out=$(post /v1/images/generations "$(jq -c '.nfe = 99' <<<"$req")")
eq "an nfe that the settings do not cost: 400" "$(status_of "$out") $(body_of "$out" | jq -r .error.param)" "400 nfe"

# edm sample --png-dir writes the same text; edmd makes the same pixels from it
if [ -x "$BUILD/edm" ]; then
    "$BUILD/edm" sample --model "$MNIST" --seeds 21 --class 4 --steps 4 --S_churn 5 --backend cpu --threads 1 \
        --png-dir "$TMP/cli" >"$TMP/cli.log" 2>&1 || fail "edm sample: $(tail -n 3 "$TMP/cli.log")"
    req=$(text "$TMP/cli/000021.png" Request)
    check "edm sample: Request text" jq -e "$every and .model == \"mnist-edm\" and .model_sha256 == \"$SHA\" and .class_label == 4 and .S_churn == 5" <<<"$req" >/dev/null
    if png c "$req"; then
        check "edm sample's Request POSTed to edmd: the same pixels" same_pixels "$TMP/cli/000021.png" "$TMP/c.png"
    else
        fail "edm sample's Request refused by edmd"
    fi
else
    skip "edm sample: $BUILD/edm not built"
fi
check "stop exits 0" srv_stop
finish
