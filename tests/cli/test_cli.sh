#!/usr/bin/env bash
# tests/cli/test_cli.sh - the `edm` command end to end.
#
#  1. usage and bad input: every error exits non-zero (never by a signal) with a one-line
#     message "edm CMD: ..." on stderr naming the problem; --help prints usage and exits 0.
#  2. option syntax: --opt=value, --opt value and the generate.py spellings give the same run;
#     images do not depend on the batch size; PNG names and tEXt chunks.
#  3. conformance with the official code (tests/vectors, made by tools/refgen/make_vectors.py):
#     `edm denoise` vs D.npy (max rel err < 1e-4); `edm sample --latents --noise` vs x.npy
#     (< 5e-4 relative) and its PNGs vs u8.npy.
# Needs $BUILD/edm; parts 2-3 need tests/vectors (override with EDM_VECTORS) and part 3 needs
# python3 with numpy (skipped when absent). Ends with "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
EDM=$BUILD/edm
VEC=${EDM_VECTORS:-tests/vectors}
CHECK=tests/cli/cli_check.py
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
skipped() { skip=$((skip + 1)); echo "SKIP: $*" >&2; }

if [ ! -x "$EDM" ]; then
    echo "FAIL: $EDM not built" >&2
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi

# a python3 with numpy: $PYTHON, python3 on the PATH, or the system one
have_numpy=0 PY=python3
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import numpy' 2>/dev/null; then
        have_numpy=1 PY=$p
        break
    fi
done

# expect_fail NAME PATTERN ARGS...: non-zero exit, not a crash, stderr exactly one line that
# starts with "edm" and contains PATTERN (a grep -E regex, case-insensitive).
expect_fail() {
    local name=$1 pattern=$2
    shift 2
    "$EDM" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    local lines
    lines=$(wc -l <"$tmp/err")
    if [ $rc -eq 0 ]; then
        bad "$name: exit status 0 for: edm $*"
    elif [ $rc -ge 124 ]; then
        bad "$name: exit status $rc (crash?) for: edm $*"
        sed 's/^/    /' "$tmp/err" >&2
    elif [ "$lines" -ne 1 ] || ! head -n 1 "$tmp/err" | grep -q '^edm'; then
        bad "$name: expected one 'edm ...' line on stderr, got $lines:"
        sed 's/^/    /' "$tmp/err" >&2
    elif ! grep -qiE -- "$pattern" "$tmp/err"; then
        bad "$name: message does not match /$pattern/: $(cat "$tmp/err")"
    else
        ok
    fi
}

# expect_ok NAME ARGS...: exit 0.
expect_ok() {
    local name=$1
    shift
    if "$EDM" "$@" >"$tmp/out" 2>"$tmp/err"; then
        ok
    else
        bad "$name: exit status $? for: edm $*"
        sed 's/^/    /' "$tmp/err" | tail -n 5 >&2
    fi
}

# ---- 1. usage and bad input that needs no model -------------------------------------------------

expect_ok "help" --help
grep -q '^usage: edm' "$tmp/out" && ok || bad "edm --help prints no usage"
for c in info denoise sample; do
    expect_ok "$c --help" "$c" --help
    grep -q "^usage: edm $c" "$tmp/out" && ok || bad "edm $c --help prints no usage"
done
grep -q -- '--S_churn' "$tmp/out" && grep -q -- '--backend' "$tmp/out" && ok ||
    bad "sample --help lacks --S_churn or --backend"

"$EDM" >/dev/null 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -lt 124 ] && ok || bad "edm with no command: exit $rc"
expect_fail "unknown command" "unknown command" frobnicate
expect_fail "unknown option" "unknown option.*--frob" sample --model m --frob 1
expect_fail "single-dash option" "unknown option" sample -x
expect_fail "missing value" "needs a value" sample --model m --steps
expect_fail "flag with value" "takes no value" sample --model m --subdirs=yes
expect_fail "missing model" "no model" sample --seeds 0-3
expect_fail "missing model info" "no model" info
expect_fail "two models info" "one model" info a b
expect_fail "stray argument" "unexpected argument" sample --model m extra
expect_fail "missing file" "nonexistent" sample --model "$tmp/nonexistent.safetensors" --seeds 0
expect_fail "missing file info" "nonexistent" info "$tmp/nonexistent.safetensors"
echo "not a model" >"$tmp/junk.safetensors"
expect_fail "junk model" "junk" info "$tmp/junk.safetensors"
expect_fail "steps 1" "steps must be in 2\.\." sample --model m --steps 1
expect_fail "steps 0" "steps must be in 2\.\." sample --model m --steps=0
expect_fail "steps text" "integer" sample --model m --steps many
expect_fail "steps float" "integer" sample --model m --steps 2.5
expect_fail "steps huge" "steps" sample --model m --steps 99999999999999
expect_fail "rho 0" "rho" sample --model m --rho 0
expect_fail "rho nan" "not a number" sample --model m --rho nan
expect_fail "S_churn negative" "S_churn" sample --model m --S_churn=-1
expect_fail "S_noise negative" "S_noise" sample --model m --S-noise -0.5
expect_fail "S_min > S_max" "S_min" sample --model m --S_min 5 --S_max 1
expect_fail "sigma_min 0" "sigma_min" sample --model m --sigma_min 0
expect_fail "sigma order" "sigma_max" sample --model m --sigma-min 2 --sigma-max 1
expect_fail "sigma_max inf" "sigma_max" sample --model m --sigma-max inf
expect_fail "alpha 0" "alpha" sample --model m --alpha 0
expect_fail "alpha 2" "alpha" sample --model m --solver heun --alpha 2
expect_fail "bad solver" "solver.*euler\|heun|euler" sample --model m --solver rk4
expect_fail "bad disc" "vp\|ve\|iddpm\|edm|disc" sample --model m --disc=cosine
expect_fail "bad schedule" "schedule" sample --model m --schedule x
expect_fail "bad scaling" "scaling" sample --model m --scaling x
expect_fail "batch 0" "batch" sample --model m --batch 0
expect_fail "class -1" "class" sample --model m --class -1
expect_fail "class and labels" "either" sample --model m --class 1 --class-labels l.npy
expect_fail "bad backend" "backend" sample --model m --backend tpu
expect_fail "bad precision" "precision" denoise --model m --precision fp8
expect_fail "threads -1" "threads" info --threads -1 m
expect_fail "denoise no x" "--x" denoise --model m --sigma s.npy --out d.npy
expect_fail "denoise no sigma" "--sigma" denoise --model m --x x.npy --out d.npy
expect_fail "denoise no out" "--out" denoise --model m --x x.npy --sigma s.npy
for s in "" "1,,2" "a" "5-2" "-3" "1-" "3-x" "+4" "1 2" "99999999999999999999999" "0-99999999999"; do
    expect_fail "bad seeds '$s'" "seeds" sample --model m --seeds "$s"
done

# ---- 2./3. with models -----------------------------------------------------------------------------

if [ ! -d "$VEC" ]; then
    skipped "no reference vectors in $VEC: model-dependent tests skipped"
    echo "$pass passed, $fail failed, $skip skipped"
    [ "$fail" -eq 0 ]
    exit
fi

# Cases, by what their directory holds.
denoise_cases=()
sample_cases=()
for d in "$VEC"/*/; do
    d=${d%/}
    if [ -f "$d/D.npy" ] && [ -f "$d/model.safetensors" ]; then denoise_cases+=("$d"); fi
    if [ -f "$d/params.json" ] && [ -f "$d/latents.npy" ]; then sample_cases+=("$d"); fi
done

# A conditional and an unconditional model for the input checks.
cond="" uncond="" cond_case="" uncond_case=""
for d in "${denoise_cases[@]}"; do
    if [ -f "$d/labels.npy" ]; then
        [ -z "$cond" ] && cond=$d/model.safetensors cond_case=$d
    else
        [ -z "$uncond" ] && uncond=$d/model.safetensors uncond_case=$d
    fi
done

if [ -n "$uncond" ]; then
    M=$uncond
    expect_ok "info" info "$M"
    grep -q '^parameters:' "$tmp/out" && grep -q '^FLOPs:' "$tmp/out" && grep -q '^memory:' "$tmp/out" &&
        ok || bad "info output lacks parameters/FLOPs/memory"
    expect_ok "info --model=" info --model="$M" --backend cpu
    expect_fail "class on unconditional" "unconditional" sample --model "$M" --seeds 0 --class 0
    # shape mismatches: x.npy is (N,C,R,R) of this model; hand over the wrong arrays
    expect_fail "latents wrong rank" "shape" sample --model "$M" --latents "$uncond_case/sigma.npy"
    expect_fail "denoise x wrong rank" "shape" denoise --model "$M" --x "$uncond_case/sigma.npy" \
        --sigma "$uncond_case/sigma.npy" --out "$tmp/d.npy"
    expect_fail "latents not npy" "latents" sample --model "$M" --latents "$M"
    expect_fail "latents missing" "latents" sample --model "$M" --latents "$tmp/none.npy"
    expect_fail "latents vs seeds" "seeds" sample --model "$M" --latents "$uncond_case/x.npy" --seeds 0-99
    expect_fail "sigma count" "sigma" denoise --model "$M" --x "$uncond_case/x.npy" \
        --sigma "$uncond_case/D.npy" --out "$tmp/d.npy"
    expect_fail "labels on unconditional" "unconditional" denoise --model "$M" --x "$uncond_case/x.npy" \
        --sigma "$uncond_case/sigma.npy" --class-labels "$uncond_case/sigma.npy" --out "$tmp/d.npy"
    expect_fail "noise wrong shape" "noise.*shape" sample --model "$M" --latents "$uncond_case/x.npy" \
        --noise "$uncond_case/x.npy" --steps 4
    touch "$tmp/afile"
    expect_fail "png-dir is a file" "png-dir" sample --model "$M" --seeds 0 --steps 2 --png-dir "$tmp/afile/sub"
    # out of a writable place: fails after sampling; the last line is the message
    "$EDM" sample --model "$M" --seeds 0 --steps 2 --backend cpu --out "$tmp/no/such/dir/x.npy" \
        >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -ne 0 ] && [ $rc -lt 124 ] && tail -n 1 "$tmp/err" | grep -q '^edm sample: --out' && ok ||
        bad "unwritable --out: exit $rc, $(tail -n 1 "$tmp/err")"

    # option spellings, batching, names
    expect_ok "seeds run" sample --model "$M" --seeds 3,5-6 --steps 3 --S_churn 1 --backend cpu \
        --batch 2 --out "$tmp/a.npy" --png-dir "$tmp/png_a"
    grep -q 'sampler edm' "$tmp/err" && ok || bad "plain options did not pick the EDM sampler"
    [ "$(grep -c '^image ' "$tmp/out")" -eq 3 ] && grep -q 'images/s' "$tmp/out" &&
        grep -q 'ms per NFE' "$tmp/out" && ok || bad "per-image lines or summary missing"
    grep -q '^image 1 seed 5 class -1 nfe 5 ' "$tmp/out" && ok || bad "image line: $(sed -n 2p "$tmp/out")"
    grep -q 'backend cpu' "$tmp/err" && ok || bad "backend not described on stderr"
    [ -f "$tmp/png_a/000003.png" ] && [ -f "$tmp/png_a/000005.png" ] && [ -f "$tmp/png_a/000006.png" ] &&
        ok || bad "PNG names by seed: $(ls "$tmp/png_a" | tr '\n' ' ')"
    expect_ok "seeds run, other spellings" sample --network="$M" --seeds=3,5,6 --steps=3 \
        --S-churn=1 --backend=cpu --batch=2 --out="$tmp/b.npy" --outdir="$tmp/png_b"
    cmp -s "$tmp/a.npy" "$tmp/b.npy" && ok || bad "the option spelling changed the images"
    cmp -s "$tmp/png_a/000005.png" "$tmp/png_b/000005.png" && ok || bad "PNGs differ between spellings"
    # Another batch size changes the network's rounding (GEMM blocking), not the randomness.
    expect_ok "seeds run, batch 1" sample --model "$M" --seeds 3,5,6 --steps 3 --S_churn 1 --backend cpu \
        --batch 1 --out "$tmp/c.npy"
    if [ $have_numpy -eq 1 ]; then
        msg=$("$PY" $CHECK cmp "$tmp/c.npy" "$tmp/a.npy" 1e-3) && ok || bad "batch size changed the images: $msg"
    fi
    expect_ok "subdirs" sample --model "$M" --seeds 999-1000 --steps 2 --backend cpu --png-dir "$tmp/png_s" --subdirs
    [ -f "$tmp/png_s/000000/000999.png" ] && [ -f "$tmp/png_s/001000/001000.png" ] && ok ||
        bad "--subdirs layout: $(cd "$tmp/png_s" && find . -type f | tr '\n' ' ')"
    expect_ok "ablation flags" sample --model "$M" --seeds 0 --steps 3 --solver heun --backend cpu
    grep -q 'sampler ablation.*solver=heun disc=edm schedule=linear scaling=none' "$tmp/err" && ok ||
        bad "--solver did not pick the ablation sampler with its defaults: $(cat "$tmp/err")"
    expect_ok "euler nfe" sample --model "$M" --seeds 0 --steps 3 --solver euler --disc vp --backend cpu
    grep -q '^image 0 seed 0 class -1 nfe 3 ' "$tmp/out" && ok || bad "euler NFE: $(head -n 1 "$tmp/out")"
    if [ $have_numpy -eq 1 ]; then
        [ "$("$PY" $CHECK pngtext "$tmp/png_a/000005.png" Seed)" = "5" ] && ok || bad "PNG tEXt seed"
        "$PY" $CHECK pngtext "$tmp/png_a/000005.png" Sampler | grep -q 'steps=3.*S_churn=1' && ok ||
            bad "PNG tEXt sampler parameters"
        "$PY" $CHECK pngtext "$tmp/png_a/000005.png" Request | "$PY" -c 'import json, sys; r = json.load(sys.stdin); assert r["seed"] == 5 and r["steps"] == 3 and r["S_churn"] == 1 and len(r["model_sha256"]) == 64, r' &&
            ok || bad "PNG tEXt Request (the settings as JSON)"
    fi
fi

if [ -n "$cond" ]; then
    M=$cond
    L=$("$PY" -c "import numpy as n; print(n.load('$cond_case/labels.npy').shape[1])" 2>/dev/null || echo 10)
    expect_fail "class out of range" "class.*out of range" sample --model "$M" --seeds 0 --class "$L"
    expect_fail "class huge" "class" sample --model "$M" --seeds 0 --class 99999999999
    expect_fail "labels wrong shape" "class-labels.*shape" sample --model "$M" --seeds 0-2 \
        --class-labels "$cond_case/labels.npy"
    expect_ok "class K" sample --model "$M" --seeds 0,1 --steps 2 --class 3 --backend cpu
    [ "$(grep -c ' class 3 ' "$tmp/out")" -eq 2 ] && ok || bad "--class 3 not applied: $(cat "$tmp/out")"
    expect_ok "class from seed" sample --model "$M" --seeds 0-7 --steps 2 --backend cpu
    [ "$(grep -o ' class [0-9]* ' "$tmp/out" | sort -u | wc -l)" -gt 1 ] && ok ||
        bad "classes drawn from the seeds are all equal"
fi

if [ $have_numpy -eq 0 ]; then
    skipped "python3 with numpy not found: conformance comparisons skipped"
    echo "$pass passed, $fail failed, $skip skipped"
    [ "$fail" -eq 0 ]
    exit
fi

# ---- 3. conformance ------------------------------------------------------------------------------

for d in "${denoise_cases[@]}"; do
    name=$(basename "$d")
    extra=()
    [ -f "$d/labels.npy" ] && extra+=(--class-labels "$d/labels.npy")
    [ -f "$d/augment.npy" ] && extra+=(--augment-labels "$d/augment.npy")
    if "$EDM" denoise --model "$d/model.safetensors" --x "$d/x.npy" --sigma "$d/sigma.npy" "${extra[@]}" \
        --backend cpu --batch 4 --out "$tmp/D.npy" >/dev/null 2>"$tmp/err"; then
        msg=$("$PY" $CHECK cmp "$tmp/D.npy" "$d/D.npy" 1e-4) && ok || bad "denoise $name: $msg"
    else
        bad "denoise $name: $(tail -n 1 "$tmp/err")"
    fi
    if [ -f "$d/D_nolabels.npy" ]; then
        extra=()
        [ -f "$d/augment.npy" ] && extra+=(--augment-labels "$d/augment.npy")
        if "$EDM" denoise --model "$d/model.safetensors" --x "$d/x.npy" --sigma "$d/sigma.npy" "${extra[@]}" \
            --backend cpu --out "$tmp/D.npy" >/dev/null 2>"$tmp/err"; then
            msg=$("$PY" $CHECK cmp "$tmp/D.npy" "$d/D_nolabels.npy" 1e-4) && ok || bad "denoise $name without labels: $msg"
        else
            bad "denoise $name without labels: $(tail -n 1 "$tmp/err")"
        fi
    fi
    if [ -f "$d/D_noaug.npy" ]; then
        extra=()
        [ -f "$d/labels.npy" ] && extra+=(--class_labels "$d/labels.npy")
        if "$EDM" denoise --model "$d/model.safetensors" --x "$d/x.npy" --sigma "$d/sigma.npy" "${extra[@]}" \
            --backend cpu --out "$tmp/D.npy" >/dev/null 2>"$tmp/err"; then
            msg=$("$PY" $CHECK cmp "$tmp/D.npy" "$d/D_noaug.npy" 1e-4) && ok || bad "denoise $name without augment: $msg"
        else
            bad "denoise $name without augment: $(tail -n 1 "$tmp/err")"
        fi
    fi
done

"$EDM" params --json >"$tmp/table.json" && ok || bad "edm params --json"
for d in "${sample_cases[@]}"; do
    name=$(basename "$d")
    model=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['model'])" "$d/params.json")
    mapfile -t opts < <("$PY" $CHECK args "$d/params.json" "$tmp/table.json")
    extra=()
    [ -f "$d/labels.npy" ] && extra+=(--class-labels "$d/labels.npy")
    rm -rf "$tmp/png"
    if "$EDM" sample --model "$VEC/$model/model.safetensors" --latents "$d/latents.npy" --noise "$d/noise.npy" \
        "${extra[@]}" "${opts[@]}" --backend cpu --out "$tmp/x.npy" --png-dir "$tmp/png" \
        >"$tmp/out" 2>"$tmp/err"; then
        msg=$("$PY" $CHECK cmp "$tmp/x.npy" "$d/x.npy" 5e-4) && ok || bad "sample $name: x $msg"
        msg=$("$PY" $CHECK png "$tmp/png" "$d/u8.npy" "$d/x.npy") && ok || bad "sample $name: PNG $msg"
        # noise from files: no seed makes this image again, so its PNG has no Request text
        first=$(ls "$tmp/png" | head -n 1)
        [ -z "$("$PY" $CHECK pngtext "$tmp/png/$first" Request)" ] && [ -n "$("$PY" $CHECK pngtext "$tmp/png/$first" Sampler)" ] &&
            ok || bad "sample $name: a Request text although the noise came from files"
        nfe=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['nfe'])" "$d/params.json")
        grep -q "^image 0 seed 0 .* nfe $nfe " "$tmp/out" && ok || bad "sample $name: NFE not $nfe: $(head -n 1 "$tmp/out")"
    else
        bad "sample $name: $(tail -n 1 "$tmp/err")"
    fi
done
[ ${#denoise_cases[@]} -gt 0 ] && [ ${#sample_cases[@]} -gt 0 ] && ok ||
    bad "no denoise or sample cases found in $VEC"

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
