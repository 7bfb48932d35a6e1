#!/usr/bin/env bash
# OpenAI's multipart endpoints, POST /v1/images/edits and /v1/images/variations, with curl's
# forms and hand-made bodies, on the bundled MNIST model (4 steps):
#  - edits: a mask (white = repaint, or OpenAI's transparent = repaint) repaints that region
#    and keeps the rest pixel for pixel, the same pixels as the JSON API with init_image and
#    mask; without a mask an image with transparent pixels is its own mask, an opaque one
#    is redrawn at strength 0.5; prompt names the class when it is one, else is ignored;
#    our own fields (seed, steps, strength, ...) as text parts; the PNG text names the files;
#  - variations: n images of fresh seeds at strength 0.5, as b64_json or url;
#  - Accept: image/png for n = 1;
#  - the form's edge cases: no image, another Content-Type (415), no boundary, a body cut
#    short, a text part past 64 KiB (413 naming it), a body past max-body (413), a field or
#    the image twice, too many parts, a part without a name, a file where text belongs, an
#    unknown field, a mask for variations, an image that is no PNG, "n" that is no number:
#    400 naming the field; the daemon answers /healthz afterwards and stops cleanly.
source "$(dirname "$0")/lib.sh"
need_daemon
need_mnist
need_pngs
srv_start edits --model "$MNIST" --max-body 200000 || { fail "daemon start"; finish; }

# form NAME PATH CURL-ARGS...: POST a form; the JSON to $TMP/NAME.json, image i to
# $TMP/NAME.i.png; prints the status
form() {
    local name=$1 path=$2 code
    shift 2
    code=$(curl -s -o "$TMP/$name.json" -w '%{http_code}' "$SRV_URL$path" "$@")
    [ "$code" = 200 ] && b64_images "$TMP/$name.json" "$TMP/$name"
    echo "$code"
}
param() { echo "$(jq -r .error.code "$TMP/$1.json") $(jq -r .error.param "$TMP/$1.json")"; }
same() { [ "$(pngdiff "$1" "$2" | cut -d' ' -f1-2)" = "0 0" ]; }
kept() { python3 tests/server/pngtool.py rows "$1" "$P/digit.png" 0 16 | cut -d' ' -f1; }
text() { python3 tests/server/pngtool.py text "$1" "$2"; }
E=/v1/images/edits V=/v1/images/variations

# ---- edits ------------------------------------------------------------------------------------
eq "edit with a mask" "$(form ed $E -F image=@"$P/digit.png" -F mask=@"$P/mask.png" -F prompt=seven \
    -F n=2 -F seed=5 -F steps=4 -F response_format=b64_json)" 200
eq "edit: OpenAI's response, n images, nfe 2N-1, the prompt's class" \
    "$(jq -c '[.object, (.data | length), .nfe, .data[].class_label, .data[].seed]' "$TMP/ed.json")" '["image.generation",2,7,7,7,5,6]'
eq "edit: 32x32 PNGs" "$(pnginfo "$TMP/ed.0.png")" "32 32 1"
eq "edit image 0: the kept half is the input's" "$(kept "$TMP/ed.0.png")" 0
eq "edit image 1: the kept half is the input's" "$(kept "$TMP/ed.1.png")" 0
eq "the PNG text names the image" "$(text "$TMP/ed.0.png" init_image_sha256)" "$(sha256sum "$P/digit.png" | cut -c1-64)"
eq "and the mask" "$(text "$TMP/ed.0.png" mask_sha256)" "$(sha256sum "$P/mask.png" | cut -c1-64)"
code=$(curl -s -o "$TMP/js.json" -w '%{http_code}' "$SRV_URL/v1/images/generations" -H 'Content-Type: application/json' \
    -d "$(jq -cn --arg i "$(base64 -w0 "$P/digit.png")" --arg m "$(base64 -w0 "$P/mask.png")" \
        '{init_image: $i, mask: $m, prompt: "seven", seed: 5, steps: 4}')")
b64_images "$TMP/js.json" "$TMP/js"
check "edit = the JSON API with init_image and mask: the same pixels ($code)" same "$TMP/ed.0.png" "$TMP/js.0.png"
eq "edit with OpenAI's mask" "$(form oa $E -F image=@"$P/digit.png" -F mask=@"$P/mask_alpha.png" -F prompt=seven \
    -F seed=5 -F steps=4)" 200
check "transparent = repaint: the same pixels as the white mask" same "$TMP/oa.0.png" "$TMP/ed.0.png"
eq "edit without a mask, a transparent image" "$(form ta $E -F image=@"$P/digit_alpha.png" -F prompt=seven -F seed=5 -F steps=4)" 200
eq "its transparency is the mask: the opaque half is kept" "$(kept "$TMP/ta.0.png")" 0
eq "its mask_sha256 is the image's" "$(text "$TMP/ta.0.png" mask_sha256)" "$(sha256sum "$P/digit_alpha.png" | cut -c1-64)"
eq "edit of an opaque image without a mask" "$(form op $E -F image=@"$P/digit.png" -F 'prompt=a digit, redrawn' -F seed=5 -F steps=4)" 200
check "img2img at strength 0.5" bash -c "python3 tests/server/pngtool.py text '$TMP/op.0.png' Sampler | grep -q ' strength=0.5 sigma_start='"
check "a prompt of no class is ignored (the class is drawn from the seed)" jq -e '.data[0].class_label >= 0' "$TMP/op.json" >/dev/null
eq "our own fields as text" "$(form own $E -F image=@"$P/digit.png" -F mask=@"$P/mask.png" -F prompt= \
    -F 'seeds=[9, 10]' -F steps=5 -F solver=euler -F class_label=2 -F resample_jump=2 -F resample_count=2 -F S_max=inf)" 200
eq "our own fields: seeds, class, Euler with RePaint (5 + 2 x 1 x 2)" "$(jq -c '[.data[].seed, .data[].class_label, .nfe]' "$TMP/own.json")" "[9,10,2,2,9]"
code=$(curl -s -o "$TMP/one.png" -w '%{http_code} %{content_type}' "$SRV_URL$E" -H 'Accept: image/png' \
    -F image=@"$P/digit.png" -F mask=@"$P/mask.png" -F prompt=seven -F seed=5 -F steps=4)
eq "Accept: image/png" "$code" "200 image/png"
check "the PNG itself: the same image" same "$TMP/one.png" "$TMP/ed.0.png"

# ---- variations -------------------------------------------------------------------------------
eq "variations" "$(form va $V -F image=@"$P/digit.png" -F n=3 -F steps=4)" 200
eq "variations: 3 images of 32x32, nfe 7" "$(jq -c '[(.data | length), .nfe]' "$TMP/va.json") $(pnginfo "$TMP/va.2.png")" "[3,7] 32 32 1"
check "variations: fresh seeds, one after another" jq -e '.data[1].seed == .data[0].seed + 1 and .data[2].seed == .data[0].seed + 2' "$TMP/va.json" >/dev/null
check "variations: strength 0.5" bash -c "python3 tests/server/pngtool.py text '$TMP/va.0.png' Sampler | grep -q ' strength=0.5 '"
check "variations differ" bash -c "! cmp -s '$TMP/va.0.png' '$TMP/va.1.png'"
eq "variations as url" "$(form vu $V -F image=@"$P/digit.png" -F response_format=url -F steps=4)" 200
url=$(jq -r '.data[0].url' "$TMP/vu.json")
eq "the url serves the PNG" "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$url")" "200 image/png"

# ---- the form's edge cases --------------------------------------------------------------------
eq "no image: 400" "$(form e $E -F prompt=x) $(param e)" "400 invalid_parameter image"
eq "JSON to edits: 415" "$(form e $E -H 'Content-Type: application/json' -d '{}') $(jq -r .error.code "$TMP/e.json")" "415 unsupported_media_type"
eq "no boundary: 400" "$(form e $E -H 'Content-Type: multipart/form-data' --data-binary 'x') $(jq -r .error.code "$TMP/e.json")" "400 bad_request"
# raw BODY-FILE: POST it with boundary XyZ
raw() { form e "$1" -H 'Content-Type: multipart/form-data; boundary=XyZ' --data-binary @"$2"; }
part() { printf -- '--XyZ\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' "$1" "$2"; }
file_part() { printf -- '--XyZ\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\nContent-Type: image/png\r\n\r\n' "$1" "$(basename "$2")"; cat "$2"; printf '\r\n'; }
{ file_part image "$P/digit.png"; part steps 4; printf -- '--XyZ--\r\n'; } >"$TMP/ok.body"
eq "a hand-made body" "$(raw $E "$TMP/ok.body")" 200
head -c $(($(stat -c %s "$TMP/ok.body") - 12)) "$TMP/ok.body" >"$TMP/cut.body"
eq "a body cut short: 400" "$(raw $E "$TMP/cut.body") $(jq -r .error.code "$TMP/e.json")" "400 bad_request"
check "cut short: says so" jq -e '.error.message | test("cut short|malformed")' "$TMP/e.json" >/dev/null
{ file_part image "$P/digit.png"; part user "$(head -c 70000 /dev/zero | tr '\0' u)"; printf -- '--XyZ--\r\n'; } >"$TMP/huge.body"
eq "a text part past 64 KiB: 413 naming it" "$(raw $E "$TMP/huge.body") $(param e)" "413 payload_too_large user"
head -c 250000 /dev/zero >"$TMP/big.bin"
eq "a body past max-body: 413" "$(form e $E -F image=@"$TMP/big.bin") $(jq -r .error.code "$TMP/e.json")" "413 payload_too_large"
{ file_part image "$P/digit.png"; part n 1; part n 2; printf -- '--XyZ--\r\n'; } >"$TMP/dup.body"
eq "a field twice: 400 naming it" "$(raw $E "$TMP/dup.body") $(param e)" "400 bad_request n"
{ file_part image "$P/digit.png"; file_part image "$P/big.png"; printf -- '--XyZ--\r\n'; } >"$TMP/dup2.body"
eq "two images: 400" "$(raw $E "$TMP/dup2.body") $(param e)" "400 bad_request image"
{ file_part image "$P/digit.png"; for i in $(seq 1 40); do part "f$i" 1; done; printf -- '--XyZ--\r\n'; } >"$TMP/many.body"
eq "too many parts: 400" "$(raw $E "$TMP/many.body") $(jq -r .error.code "$TMP/e.json")" "400 bad_request"
{ file_part image "$P/digit.png"; printf -- '--XyZ\r\nContent-Disposition: form-data\r\n\r\n1\r\n--XyZ--\r\n'; } >"$TMP/noname.body"
eq "a part without a name: 400" "$(raw $E "$TMP/noname.body") $(jq -r .error.code "$TMP/e.json")" "400 bad_request"
eq "a file where text belongs: 400" "$(form e $E -F image=@"$P/digit.png" -F n=@"$P/mask.png") $(param e)" "400 invalid_parameter n"
eq "an unknown field: 400" "$(form e $E -F image=@"$P/digit.png" -F background=auto) $(param e)" "400 invalid_parameter background"
eq "init_image as a field: 400" "$(form e $E -F image=@"$P/digit.png" -F init_image=x) $(param e)" "400 invalid_parameter init_image"
eq "a mask for variations: 400" "$(form e $V -F image=@"$P/digit.png" -F mask=@"$P/mask.png") $(param e)" "400 invalid_parameter mask"
eq "an image that is no PNG: 400" "$(form e $E -F image=@"$TMP/cut.body") $(param e)" "400 invalid_parameter image"
eq "a mask that is no PNG: 400" "$(form e $E -F image=@"$P/digit.png" -F mask=@"$TMP/cut.body") $(param e)" "400 invalid_parameter mask"
eq "n that is no number: 400" "$(form e $V -F image=@"$P/digit.png" -F n=two) $(param e)" "400 invalid_parameter n"
eq "strength 0: 400" "$(form e $V -F image=@"$P/digit.png" -F strength=0) $(param e)" "400 invalid_parameter strength"
eq "a size the model does not make: 400" "$(form e $E -F image=@"$P/digit.png" -F size=1024x1024) $(param e)" "400 invalid_parameter size"
eq "after all that, /healthz" "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL/healthz")" 200
check "stop exits 0" srv_stop
finish
