#!/usr/bin/env bash
# Starting from an image through the JSON API (init_image, mask, strength, sigma_start,
# resample_*, variation_*) on /v1/images/generations and /v1/jobs, with the bundled MNIST
# model (32x32 gray, 4 steps) and the RGB test model:
#  - errors: bad base64, not a PNG, a data URL of another type, a PNG past 1024 a side, a
#    mask or a strength without an image, a body past max-body: 400 / 413 naming the field;
#  - the mask guarantee: the kept half of every image is the input's, pixel for pixel, after
#    the PNG round trip; a mask as OpenAI draws it (transparent = repaint) acts as the white
#    one; a mask with nothing to repaint returns the input with nfe 0;
#  - reproducibility: the same request twice, and amid unrelated concurrent requests
#    (batched with them), gives the same pixels;
#  - strength near 0 returns the input; NFE per image as edm_sample_nfe counts it (2N-1 at
#    every strength, Euler N, RePaint's extra, 0 for nothing to repaint);
#  - resizing (96x96 to 32x32), gray into an RGB model, a 64x64 RGB PNG within max-body;
#  - variation_strength 1 is the variation seed's image;
#  - the PNG text: init_image_sha256 / mask_sha256 are the files' SHA-256, the settings are
#    in Sampler and Request, and the Request POSTed back with the same files makes the same
#    pixels (and is refused without them); so does the Request `edm sample` writes;
#  - an async job from an image gives the synchronous request's pixels.
source "$(dirname "$0")/lib.sh"
need_daemon
need_mnist
need_pngs
srv_start i2i --model "$MNIST" --model rgb="$MODEL_RGB" --max-batch 16 --max-body 65536 \
    || { fail "daemon start"; finish; }
b64() { base64 -w0 "$P/$1"; }
DIGIT=$(b64 digit.png) MASK=$(b64 mask.png)

# gen NAME BODY: POST, the JSON to $TMP/NAME.json and image i to $TMP/NAME.i.png; the status
gen() {
    local code
    code=$(curl -s -o "$TMP/$1.json" -w '%{http_code}' -X POST "$SRV_URL/v1/images/generations" \
        -H 'Content-Type: application/json' --data-binary "$2")
    [ "$code" = 200 ] && b64_images "$TMP/$1.json" "$TMP/$1"
    echo "$code"
}
# body JQ-ARGS...: a request body from jq (the images as $img / $mask)
body() { jq -cn --arg img "$DIGIT" --arg mask "$MASK" "$@"; }
same() { [ "$(pngdiff "$1" "$2" | cut -d' ' -f1-2)" = "0 0" ]; }
text() { python3 tests/server/pngtool.py text "$1" "$2"; }
err_of() { echo "$(jq -r '.error.param' "$TMP/$1.json") $(jq -r '.error.type' "$TMP/$1.json")"; }

# ---- errors -------------------------------------------------------------------------------
bad() { # DESC STATUS PARAM BODY
    local code
    code=$(gen bad "$4")
    eq "$1: $2 naming $3" "$code $(jq -r .error.param "$TMP/bad.json")" "$2 $3"
    check "$1: a message" jq -e '.error.message | length > 10' "$TMP/bad.json" >/dev/null
}
bad "not base64" 400 init_image '{"init_image": "not*base64"}'
bad "not a PNG" 400 init_image "{\"init_image\": \"$(printf 'GIF89a....' | base64 -w0)\"}"
bad "a JPEG data URL" 400 init_image "$(body '{init_image: ("data:image/jpeg;base64," + $img)}')"
bad "a truncated PNG" 400 init_image "{\"init_image\": \"$(head -c 60 "$P/digit.png" | base64 -w0)\"}"
bad "a PNG of 2000 pixels a side" 400 init_image '{"init_image": "iVBORw0KGgoAAAANSUhEUgAAB9AAAAAICAAAAACEmTtpAAAAAElFTkSuQmCC"}'
check "a PNG of 2000 pixels a side: the message names the size and the cap" \
    jq -e '.error.message | contains("2000x8") and contains("1024")' "$TMP/bad.json" >/dev/null
bad "a mask without an image" 400 mask "$(body '{mask: $mask}')"
bad "a bad mask" 400 mask "$(body '{init_image: $img, mask: "AAAA"}')"
bad "strength without an image" 400 strength '{"strength": 0.5}'
bad "strength 0" 400 strength "$(body '{init_image: $img, strength: 0}')"
bad "strength and sigma_start" 400 sigma_start "$(body '{init_image: $img, strength: 0.5, sigma_start: 2}')"
bad "sigma_start past sigma_max" 400 sigma_start "$(body '{init_image: $img, sigma_start: 500}')"
bad "variation_strength without a seed" 400 variation_strength '{"variation_strength": 0.5}'
head -c 60000 /dev/urandom >"$TMP/big.bin"
code=$(gen bad "{\"init_image\": \"$(base64 -w0 "$TMP/big.bin")\"}")
eq "a body past max-body (64 KiB here): 413" "$code $(jq -r .error.code "$TMP/bad.json")" "413 payload_too_large"

# ---- inpainting: the mask guarantee, NFE, reproducibility -----------------------------------
IN=$(body '{init_image: $img, mask: $mask, seed: 5, n: 2, steps: 4, class_label: 3}')
eq "inpaint: 200" "$(gen inp "$IN")" 200
eq "inpaint: nfe 2N-1 per image and in all" "$(jq -c '[.nfe, .data[].nfe]' "$TMP/inp.json")" "[7,7,7]"
eq "inpaint: 32x32 gray" "$(pnginfo "$TMP/inp.0.png")" "32 32 1"
for i in 0 1; do
    read -r nd _ <<<"$(python3 tests/server/pngtool.py rows "$TMP/inp.$i.png" "$P/digit.png" 0 16)"
    eq "inpaint image $i: the kept upper half is the input's, pixel for pixel" "$nd" 0
    read -r nd _ <<<"$(python3 tests/server/pngtool.py rows "$TMP/inp.$i.png" "$P/digit.png" 16 32)"
    check "inpaint image $i: the lower half is repainted ($nd pixels differ)" test "$nd" -gt 0
done
eq "inpaint again" "$(gen inp2 "$IN")" 200
check "the same request twice: the same pixels" same "$TMP/inp.0.png" "$TMP/inp2.0.png"
check "two seeds, two images" bash -c "! cmp -s '$TMP/inp.0.png' '$TMP/inp.1.png'"

# amid unrelated requests, sharing their batches
PIDS=()
for s in 1 2 3; do
    curl -s -o /dev/null -X POST "$SRV_URL/v1/images/generations" -H 'Content-Type: application/json' \
        -d "{\"seed\": $s, \"n\": 3, \"steps\": 40}" &
    PIDS+=($!)
done
sleep 0.3
eq "inpaint amid load" "$(gen load "$IN")" 200
wait "${PIDS[@]}"
check "amid load: batched with others (max batch $(jq .batch.max_size "$TMP/load.json"))" \
    jq -e '.batch.max_size > 2' "$TMP/load.json" >/dev/null
read -r nd maxd _ <<<"$(pngdiff "$TMP/inp.0.png" "$TMP/load.0.png")"
echo "inpainting alone vs batched: $nd values differ, by at most ${maxd:-?} levels"
check "amid load: the same pixels (at most one level on a few, the CPU GEMM's last bits)" \
    test "${maxd:-9}" -le 1 -a "${nd:-999}" -le 10
read -r nd _ <<<"$(python3 tests/server/pngtool.py rows "$TMP/load.0.png" "$P/digit.png" 0 16)"
eq "amid load: the kept half still the input's" "$nd" 0

# OpenAI's kind of mask: transparent = repaint
eq "alpha mask" "$(gen alpha "$(jq -cn --arg img "$DIGIT" --arg mask "$(b64 mask_alpha.png)" \
    '{init_image: $img, mask: $mask, seed: 5, steps: 4, class_label: 3}')")" 200
check "a mask whose lower half is transparent acts as the white lower half" same "$TMP/alpha.0.png" "$TMP/inp.0.png"

# nothing to repaint: the input, no evaluation
eq "black mask" "$(gen black "$(jq -cn --arg img "$DIGIT" --arg mask "$(b64 black.png)" \
    '{init_image: $img, mask: $mask, seed: 5, steps: 4}')")" 200
eq "nothing to repaint: nfe 0" "$(jq -c '[.data[].nfe]' "$TMP/black.json")" "[0]"
check "nothing to repaint: the input" same "$TMP/black.0.png" "$P/digit.png"

# ---- img2img: strength, NFE ---------------------------------------------------------------
eq "strength 1e-6" "$(gen s0 "$(body '{init_image: $img, strength: 1e-6, seed: 9, steps: 4}')")" 200
read -r _ maxd _ <<<"$(pngdiff "$TMP/s0.0.png" "$P/digit.png")"
check "strength near 0 returns the input (within ${maxd:-?} levels)" test "${maxd:-9}" -le 1
eq "strength near 0 keeps the steps: nfe 7" "$(jq -c '[.nfe, .data[0].nfe]' "$TMP/s0.json")" "[7,7]"
eq "default strength" "$(gen img "$(body '{init_image: $img, seed: 9, steps: 4}')")" 200
check "img2img default strength 0.5 in the Sampler text" bash -c \
    "python3 tests/server/pngtool.py text '$TMP/img.0.png' Sampler | grep -q ' strength=0.5 sigma_start='"
eq "euler" "$(gen eu "$(body '{init_image: $img, seed: 9, steps: 4, solver: "euler", strength: 0.7}')")" 200
eq "Euler from an image: nfe N" "$(jq -c '[.nfe, .data[0].nfe]' "$TMP/eu.json")" "[4,4]"
eq "RePaint" "$(gen rp "$(body '{init_image: $img, mask: $mask, seed: 9, steps: 4, resample_jump: 2, resample_count: 3}')")" 200
eq "RePaint: 7 + 1 jump point x 2 passes x 2 steps x 2 = 15 per image" "$(jq -c '[.nfe, .data[0].nfe]' "$TMP/rp.json")" "[15,15]"
read -r nd _ <<<"$(python3 tests/server/pngtool.py rows "$TMP/rp.0.png" "$P/digit.png" 0 16)"
eq "RePaint: the kept half is the input's" "$nd" 0

# ---- sizes and channels ---------------------------------------------------------------------
eq "96x96 input" "$(gen big "$(jq -cn --arg img "$(b64 big.png)" '{init_image: $img, seed: 9, steps: 4}')")" 200
eq "96x96 input: resized to 32x32" "$(pnginfo "$TMP/big.0.png")" "32 32 1"
eq "gray into the RGB model" "$(gen rgb "$(body '{model: "rgb", init_image: $img, seed: 9, steps: 3}')")" 200
eq "gray into the RGB model: 16x16 RGB" "$(pnginfo "$TMP/rgb.0.png")" "16 16 3"
N64=$(b64 noise64.png)
eq "a 64x64 RGB PNG (${#N64} bytes of base64) within a 64 KiB max-body" \
    "$(gen n64 "$(jq -cn --arg img "$N64" '{model: "rgb", init_image: $img, seed: 9, steps: 3}')")" 200

# ---- variations from seeds --------------------------------------------------------------------
eq "variation" "$(gen var "{\"seed\": 3, \"variation_seed\": 11, \"variation_strength\": 1, \"steps\": 4, \"class_label\": 2}")" 200
eq "seed 11" "$(gen s11 '{"seed": 11, "steps": 4, "class_label": 2}')" 200
read -r _ maxd _ <<<"$(pngdiff "$TMP/var.0.png" "$TMP/s11.0.png")"
check "variation_strength 1 is the variation seed's image (within ${maxd:-?} levels)" test "${maxd:-9}" -le 1
eq "half way" "$(gen var2 "{\"seed\": 3, \"variation_seed\": 11, \"variation_strength\": 0.5, \"steps\": 4, \"class_label\": 2}")" 200
check "variation_strength 0.5 is neither" bash -c "! cmp -s '$TMP/var2.0.png' '$TMP/s11.0.png'"
eq "variation in the PNG text" "$(text "$TMP/var2.0.png" variation)" "variation_seed=11 variation_strength=0.5"

# ---- the PNG text reproduces the image ------------------------------------------------------
eq "init_image_sha256 is the file's" "$(text "$TMP/inp.0.png" init_image_sha256)" "$(sha256sum "$P/digit.png" | cut -c1-64)"
eq "mask_sha256 is the file's" "$(text "$TMP/inp.0.png" mask_sha256)" "$(sha256sum "$P/mask.png" | cut -c1-64)"
req=$(text "$TMP/inp.0.png" Request)
check "Request: the inputs' hashes, the settings" jq -e '.init_image_sha256 and .mask_sha256 and .seed == 5 and .nfe == 7 and .class_label == 3 and (has("strength") | not)' <<<"$req" >/dev/null
eq "Request without the files: 400 naming init_image_sha256" "$(gen rq "$req") $(jq -r .error.param "$TMP/rq.json")" "400 init_image_sha256"
eq "Request with the files" "$(gen rq "$(jq -c --arg img "$DIGIT" --arg mask "$MASK" '. + {init_image: $img, mask: $mask}' <<<"$req")")" 200
check "the Request and the files make the same pixels" same "$TMP/rq.0.png" "$TMP/inp.0.png"
eq "Request with another mask: 400" "$(gen rq "$(jq -c --arg img "$DIGIT" --arg mask "$(b64 black.png)" '. + {init_image: $img, mask: $mask}' <<<"$req") ") $(jq -r .error.param "$TMP/rq.json")" "400 mask_sha256"
req=$(text "$TMP/img.0.png" Request)
check "img2img Request: strength 0.5" jq -e '.strength == 0.5 and .init_image_sha256 and (has("mask_sha256") | not)' <<<"$req" >/dev/null
eq "img2img Request with the file" "$(gen rq "$(jq -c --arg img "$DIGIT" '. + {init_image: $img}' <<<"$req")")" 200
check "img2img: the same pixels" same "$TMP/rq.0.png" "$TMP/img.0.png"
req=$(text "$TMP/var2.0.png" Request)
eq "a variation's Request alone" "$(gen rq "$req")" 200
check "a variation's Request makes the same pixels" same "$TMP/rq.0.png" "$TMP/var2.0.png"
if [ -x "$BUILD/edm" ]; then
    "$BUILD/edm" sample --model "$MNIST" --seeds 21 --class 4 --steps 4 --init-image "$P/digit.png" \
        --mask "$P/mask.png" --backend cpu --threads 1 --png-dir "$TMP/cli" >"$TMP/cli.log" 2>&1 ||
        fail "edm sample: $(tail -n 3 "$TMP/cli.log")"
    req=$(text "$TMP/cli/000021.png" Request)
    eq "edm sample's Request with the files, to edmd" \
        "$(gen cli "$(jq -c --arg img "$DIGIT" --arg mask "$MASK" '. + {init_image: $img, mask: $mask}' <<<"$req")")" 200
    read -r _ maxd _ <<<"$(pngdiff "$TMP/cli.0.png" "$TMP/cli/000021.png")"
    check "edm sample and edmd: the same image (within ${maxd:-?} levels)" test "${maxd:-9}" -le 1
else
    skip "edm sample's Request: $BUILD/edm not built"
fi

# ---- an async job from an image -------------------------------------------------------------
code=$(curl -s -o "$TMP/job.json" -w '%{http_code}' -X POST "$SRV_URL/v1/jobs" -H 'Content-Type: application/json' \
    --data-binary "$(body '{init_image: $img, mask: $mask, seed: 5, steps: 4, class_label: 3}')")
eq "job: 202" "$code" 202
id=$(jq -r .id "$TMP/job.json")
for _ in $(seq 1 100); do
    [ "$(curl -s "$SRV_URL/v1/jobs/$id" | jq -r .status)" = completed ] && break
    sleep 0.1
done
curl -s -o "$TMP/job.png" "$SRV_URL/v1/jobs/$id/images/0"
check "the job's image is the synchronous one" same "$TMP/job.png" "$TMP/inp.0.png"
check "stop exits 0" srv_stop
finish
