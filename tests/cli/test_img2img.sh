#!/usr/bin/env bash
# tests/cli/test_img2img.sh - `edm sample` from an image, with the bundled MNIST model on the
# CPU (4 steps: a few seconds):
#  - bad input: --mask / --strength without --init-image, strength 0, sigma_start beyond the
#    range, hostile PNGs (tests/fuzz/corpus_png/bad_*), a mask of the wrong shape;
#  - inpainting: the known half exactly the input's, NFE 2N-1, the PNG text records the
#    SHA-256 of the init image and the mask files and the settings;
#  - reproducibility: the same command twice is bit-identical; alone vs batched with other
#    seeds within the CPU GEMM's last bits;
#  - strength near 0 returns the input (within 1 level); the default img2img strength 0.5
#    keeps the step count; 96x96 and RGB inputs are resized / converted;
#  - variations: --variation-strength 1 is the variation seed's image.
# Needs $BUILD/edm, models/mnist-edm.safetensors and python3 with numpy (skipped otherwise).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
EDM=$BUILD/edm
MODEL=models/mnist-edm.safetensors
H=tests/cli/img2img_check.py
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

if [ ! -x "$EDM" ] || [ ! -f "$MODEL" ]; then
    echo "SKIP: needs $EDM and $MODEL"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
PY=/usr/bin/python3
command -v "$PY" >/dev/null || PY=python3
have_numpy=0
"$PY" -c 'import numpy' 2>/dev/null && have_numpy=1
if [ $have_numpy = 0 ]; then
    echo "SKIP: needs python3 with numpy"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
"$PY" $H pngs "$tmp" || { echo "FAIL: cannot write the test PNGs"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

# expect_fail NAME PATTERN ARGS...: exit 1 or 2 (not a crash) with one "edm sample:" line matching
expect_fail() {
    local name=$1 pattern=$2
    shift 2
    "$EDM" sample --model $MODEL --backend cpu "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if { [ $rc -ne 1 ] && [ $rc -ne 2 ]; } || [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -qiE -- "$pattern" "$tmp/err"; then
        bad "$name: exit $rc, stderr: $(cat "$tmp/err")"
    else
        ok
    fi
}
S=(sample --model $MODEL --backend cpu --steps 4 --class 0)

expect_fail "mask without init" "mask needs --init-image" --mask "$tmp/mask.png"
expect_fail "strength without init" "need --init-image" --strength 0.5
expect_fail "strength 0" "strength must be in \(0, 1\]" --init-image "$tmp/digit.png" --strength 0
expect_fail "sigma_start too big" "sigma_start must be in" --init-image "$tmp/digit.png" --sigma-start 500
expect_fail "both" "either strength or sigma_start" --init-image "$tmp/digit.png" --strength 0.5 --sigma-start 2
expect_fail "variation strength alone" "needs --variation-seed" --variation-strength 0.5
expect_fail "bad variation seed" "not a seed" --variation-seed -3 --variation-strength 0.5
expect_fail "resample without jump" "resample_jump" --init-image "$tmp/digit.png" --mask "$tmp/mask.png" --resample-count 3
for f in tests/fuzz/corpus_png/bad_*.png; do
    expect_fail "hostile $(basename "$f")" "init-image.*(bad PNG|not a PNG|PNG of)" --init-image "$f"
done
printf 'x' >"$tmp/empty.npy"
expect_fail "bad mask npy" "mask" --init-image "$tmp/digit.png" --mask "$tmp/empty.npy"

# inpainting
if "$EDM" "${S[@]}" --seeds 0-1 --init-image "$tmp/digit.png" --mask "$tmp/mask.png" \
    --out "$tmp/a.npy" --png-dir "$tmp/png" >"$tmp/out" 2>"$tmp/err"; then
    ok
    grep -q "^image 0 seed 0 class 0 nfe 7 " "$tmp/out" && ok || bad "inpainting NFE: $(head -n 1 "$tmp/out")"
    h=$(sha256sum "$tmp/digit.png" | cut -c1-64)
    [ "$($PY $H text "$tmp/png/000000.png" init_image_sha256)" = "$h" ] && ok || bad "init_image_sha256"
    h=$(sha256sum "$tmp/mask.png" | cut -c1-64)
    [ "$($PY $H text "$tmp/png/000001.png" mask_sha256)" = "$h" ] && ok || bad "mask_sha256"
    $PY $H text "$tmp/png/000000.png" Sampler | grep -q "^edm steps=4 nfe=7 .*sigma_max=80 " && ok ||
        bad "sampler text: $($PY $H text "$tmp/png/000000.png" Sampler)"
    if [ $have_numpy = 1 ]; then
        msg=$($PY $H known "$tmp/a.npy" "$tmp/digit.png") && ok || bad "inpainting: $msg"
        "$EDM" "${S[@]}" --seeds 0-1 --init-image "$tmp/digit.png" --mask "$tmp/mask.png" \
            --out "$tmp/b.npy" >/dev/null 2>&1
        msg=$($PY $H same "$tmp/a.npy" "$tmp/b.npy" 0) && ok || bad "inpainting twice: $msg"
        "$EDM" "${S[@]}" --seeds 1 --init-image "$tmp/digit.png" --mask "$tmp/mask.png" \
            --out "$tmp/c.npy" >/dev/null 2>&1
        "$PY" -c "import numpy as np,sys; np.save(sys.argv[2], np.load(sys.argv[1])[1:2])" "$tmp/a.npy" "$tmp/a1.npy"
        msg=$($PY $H same "$tmp/a1.npy" "$tmp/c.npy" 1e-4) && ok || bad "seed 1 alone vs batched: $msg"
    fi
else
    bad "inpainting: $(tail -n 1 "$tmp/err")"
fi

# RePaint: the extra evaluations are counted (steps 4, jump 2, count 3: 7 + 1*2*2*2 = 15)
if "$EDM" "${S[@]}" --seeds 0 --init-image "$tmp/digit.png" --mask "$tmp/mask.png" \
    --resample-jump 2 --resample-count 3 >"$tmp/out" 2>"$tmp/err"; then
    grep -q "^image 0 seed 0 class 0 nfe 15 " "$tmp/out" && ok || bad "RePaint NFE: $(head -n 1 "$tmp/out")"
else
    bad "RePaint: $(tail -n 1 "$tmp/err")"
fi

# strength near 0 returns the input; the default strength keeps the steps
if "$EDM" "${S[@]}" --seeds 3 --init-image "$tmp/digit.png" --strength 1e-6 --out "$tmp/s0.npy" \
    >"$tmp/out" 2>"$tmp/err"; then
    grep -q " nfe 7 " "$tmp/out" && ok || bad "strength 1e-6 NFE: $(head -n 1 "$tmp/out")"
    if [ $have_numpy = 1 ]; then
        msg=$($PY $H near "$tmp/s0.npy" "$tmp/digit.png" 1) && ok || bad "strength 1e-6: $msg"
    fi
else
    bad "strength 1e-6: $(tail -n 1 "$tmp/err")"
fi
if "$EDM" "${S[@]}" --seeds 3 --init-image "$tmp/big.png" --png-dir "$tmp/png2" >"$tmp/out" 2>"$tmp/err"; then
    grep -q "96x96 resized to 32x32" "$tmp/err" && ok || bad "resize note: $(cat "$tmp/err")"
    grep -q " nfe 7 " "$tmp/out" && ok || bad "img2img NFE: $(head -n 1 "$tmp/out")"
    $PY $H text "$tmp/png2/000003.png" Sampler | grep -q " strength=0.5 sigma_start=" && ok ||
        bad "default strength: $($PY $H text "$tmp/png2/000003.png" Sampler)"
else
    bad "img2img 96x96: $(tail -n 1 "$tmp/err")"
fi
"$EDM" "${S[@]}" --seeds 3 --init-image "$tmp/rgb.png" --out "$tmp/rgb.npy" >/dev/null 2>&1 &&
    "$EDM" "${S[@]}" --seeds 3 --init-image "$tmp/digit.png" --out "$tmp/gray.npy" >/dev/null 2>&1 && ok ||
    bad "RGB init image on a gray model"
if [ $have_numpy = 1 ]; then
    msg=$($PY $H same "$tmp/rgb.npy" "$tmp/gray.npy" 1e-3) && ok || bad "gray RGB = gray: $msg"
fi

# variations: strength 1 of seed 5 is seed 5
if [ $have_numpy = 1 ] &&
    "$EDM" "${S[@]}" --seeds 0 --variation-seed 5 --variation-strength 1 --out "$tmp/v.npy" >/dev/null 2>&1 &&
    "$EDM" "${S[@]}" --seeds 5 --out "$tmp/v5.npy" >/dev/null 2>&1; then
    msg=$($PY $H same "$tmp/v.npy" "$tmp/v5.npy" 1e-3) && ok || bad "variation strength 1: $msg"
else
    [ $have_numpy = 1 ] && bad "variations did not run"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
