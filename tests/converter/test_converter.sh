#!/usr/bin/env bash
# Tests of tools/edm2safetensors.py (spec 5): converts the committed official pickles
# (tests/converter/pickles, made by make_pickles.py with the official code) and compares the
# result with the expected names/shapes/digests/config; feeds hostile and malformed pickles
# (make_hostile.py) that must be refused cleanly without executing anything.
# Needs python3 with numpy (Debian python3-numpy); torch is used only for the optional
# cross-check against the official loader (skipped without torch or the official code, which
# is looked for in $EDM_OFFICIAL, default bench/official).
# Last line: "N passed, N failed, N skipped"; exit status 1 on any failure.
set -u
cd "$(dirname "$0")/../.."
pass=0 fail=0 skip=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; sed 's/^/    /' "$TMP/log" | tail -n 15; fail=$((fail + 1)); }
skp() { echo "SKIP $1"; skip=$((skip + 1)); }

PY=
for c in ${PYTHON:-} /usr/bin/python3 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import numpy' >/dev/null 2>&1; then PY=$c; break; fi
done
if [ -z "$PY" ]; then
    echo "SKIP no python3 with numpy"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OFFICIAL=${EDM_OFFICIAL:-bench/official}
conv() { "$PY" tools/edm2safetensors.py "$@"; }

# 1. Official pickles: expected tensors and config; optional cross-check with the official loader.
for pkl in tests/converter/pickles/*.pkl; do
    name=$(basename "$pkl" .pkl)
    out="$TMP/$name.safetensors"
    if conv "$pkl" "$out" >"$TMP/log" 2>&1 &&
        "$PY" tests/converter/check.py expected "$out" "tests/converter/pickles/$name.expected.json" >>"$TMP/log" 2>&1; then
        ok "convert $name"
    else
        bad "convert $name"
        continue
    fi
    "$PY" tests/converter/check.py official "$pkl" "$out" "$OFFICIAL" >"$TMP/log" 2>&1
    case $? in
        0) ok "official cross-check $name" ;;
        77) skp "official cross-check $name ($(tail -n 1 "$TMP/log"))" ;;
        *) bad "official cross-check $name" ;;
    esac
done

# 2. --dtype F16 (u and Fourier freqs stay F32) and the metadata options.
for name in ve_ncsnpp_uncond iddpm_adm_proto2; do
    if conv tests/converter/pickles/$name.pkl "$TMP/f16.safetensors" --dtype F16 >"$TMP/log" 2>&1 &&
        "$PY" tests/converter/check.py f16 "$TMP/$name.safetensors" "$TMP/f16.safetensors" >>"$TMP/log" 2>&1; then
        ok "--dtype F16 $name"
    else
        bad "--dtype F16 $name"
    fi
done
pkl=tests/converter/pickles/vp_ddpmpp_cond.pkl
if conv "$pkl" "$TMP/f16.safetensors" --dtype F16 --name "toy vp" --description "a toy" >"$TMP/log" 2>&1 &&
    "$PY" tests/converter/check.py f16 "$TMP/vp_ddpmpp_cond.safetensors" "$TMP/f16.safetensors" >>"$TMP/log" 2>&1 &&
    "$PY" -c "import sys; sys.path.insert(0,'tools'); import edmfile; m=edmfile.read_model('$TMP/f16.safetensors')[2]; assert m['name']=='toy vp' and m['description']=='a toy', m" >>"$TMP/log" 2>&1; then
    ok "--dtype F16, --name, --description"
else
    bad "--dtype F16, --name, --description"
fi

# 2b. Class names: from a file (commas separate a class's names), and CIFAR-10's known ten.
names_of() { "$PY" -c "import sys; sys.path.insert(0,'tools'); import edmfile; print(edmfile.read_model('$1')[2].get('class_names'))"; }
printf '# digits\nzero, 0\none,1\n\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine, 9\n' >"$TMP/names.txt"
if conv "$pkl" "$TMP/named.safetensors" --class-names "$TMP/names.txt" >"$TMP/log" 2>&1 &&
    [ "$(names_of "$TMP/named.safetensors")" = '[["zero", "0"], ["one", "1"], "two", "three", "four", "five", "six", "seven", "eight", ["nine", "9"]]' ]; then
    ok "--class-names FILE"
else
    names_of "$TMP/named.safetensors" >>"$TMP/log" 2>&1
    bad "--class-names FILE"
fi
cp "$pkl" "$TMP/edm-cifar10-32x32-cond-vp.pkl"
if conv "$TMP/edm-cifar10-32x32-cond-vp.pkl" "$TMP/cifar.safetensors" >"$TMP/log" 2>&1 &&
    [ "$(names_of "$TMP/cifar.safetensors")" = '["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]' ] &&
    [ "$(names_of "$TMP/vp_ddpmpp_cond.safetensors")" = None ]; then
    ok "CIFAR-10's class names (and none for another 10-class pickle)"
else
    bad "CIFAR-10's class names"
fi
printf 'a\nb\n' >"$TMP/two.txt"
printf 'a\nA\nc\nd\ne\nf\ng\nh\ni\nj\n' >"$TMP/dup.txt"
conv "$pkl" "$TMP/x.safetensors" --class-names "$TMP/two.txt" >"$TMP/log" 2>&1
rc1=$?
grep -q "names 2 classes but the network has label_dim 10" "$TMP/log"
g1=$?
conv "$pkl" "$TMP/x.safetensors" --class-names "$TMP/dup.txt" >"$TMP/log" 2>&1
rc2=$?
if [ $rc1 -eq 1 ] && [ $g1 -eq 0 ] && [ $rc2 -eq 1 ] && grep -q "names class 0 and class 1" "$TMP/log"; then
    ok "--class-names refuses a wrong count and a name of two classes"
else
    bad "--class-names refuses a wrong count and a name of two classes"
fi

# 3. Hostile and malformed inputs: exit 1 with a clean error, no traceback, nothing executed.
MARKER="$TMP/PWNED"
"$PY" tests/converter/make_hostile.py "$TMP/h" "$MARKER" >"$TMP/log" 2>&1 || { bad "make_hostile.py"; }
if conv "$TMP/h/fake_init_args.pkl" "$TMP/fake.safetensors" >"$TMP/log" 2>&1 &&
    "$PY" tests/converter/check.py fake "$TMP/fake.safetensors" >>"$TMP/log" 2>&1; then
    ok "hand-built pickle with positional _init_args"
else
    bad "hand-built pickle with positional _init_args"
fi
src=tests/converter/pickles/edm_adm_cond_fp16.pkl
size=$(wc -c <"$src")
for n in 0 1 10 100 $((size / 3)) $((size / 2)) $((size - 2)) $((size - 1)); do
    head -c "$n" "$src" >"$TMP/h/truncated_$n.pkl"
done
expect_refused() { # name file pattern
    local name=$1 file=$2 pattern=$3 rc
    rm -f "$MARKER"
    conv "$file" "$TMP/refused.safetensors" >"$TMP/log" 2>&1
    rc=$?
    if [ "$rc" -eq 1 ] && grep -q "^edm2safetensors: error: " "$TMP/log" && ! grep -q Traceback "$TMP/log" &&
        grep -qi -- "$pattern" "$TMP/log" && [ ! -e "$MARKER" ] && [ ! -e "$TMP/refused.safetensors" ]; then
        ok "refuses $name"
    else
        echo "    (exit $rc, marker $([ -e "$MARKER" ] && echo CREATED || echo absent))" >>"$TMP/log"
        bad "refuses $name"
    fi
}
expect_refused "os.system via __reduce__" "$TMP/h/os_system.pkl" "refusing to load global posix.system"
expect_refused "builtins.exec (protocol 0)" "$TMP/h/exec_proto0.pkl" "refusing to load global builtins.exec"
expect_refused "module_src is never executed" "$TMP/h/module_src_exec.pkl" "no 'model' submodule"
expect_refused "global inside a storage blob" "$TMP/h/storage_global.pkl" "inside a tensor storage"
expect_refused "unknown preconditioner class" "$TMP/h/unknown_class.pkl" "unknown class 'EvilPrecond'"
expect_refused "unknown inner class" "$TMP/h/unknown_inner.pkl" "unknown class 'Backdoor'"
expect_refused "tensor view past its storage" "$TMP/h/oob_tensor.pkl" "past its storage"
expect_refused "no 'ema' key" "$TMP/h/no_ema.pkl" "no 'ema' entry"
expect_refused "top level not a dict" "$TMP/h/not_dict.pkl" "not a network pickle"
expect_refused "not a pickle" "$TMP/h/notapickle.pkl" "not a valid pickle"
expect_refused "missing file" "$TMP/h/does_not_exist.pkl" "cannot open"
for n in 0 1 10 100 $((size / 3)) $((size / 2)) $((size - 2)) $((size - 1)); do
    expect_refused "truncated to $n of $size bytes" "$TMP/h/truncated_$n.pkl" "error"
done
rm -f "$MARKER"
conv "$src" "$TMP/no/such/dir/out.safetensors" >"$TMP/log" 2>&1
if [ $? -eq 1 ] && grep -q "cannot write" "$TMP/log" && ! grep -q Traceback "$TMP/log"; then
    ok "unwritable output path"
else
    bad "unwritable output path"
fi
conv >"$TMP/log" 2>&1
if [ $? -eq 2 ]; then ok "usage error exits 2"; else bad "usage error exits 2"; fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
