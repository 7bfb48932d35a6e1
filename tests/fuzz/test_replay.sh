#!/usr/bin/env bash
# Replays the fuzz corpora and the hostile samples through the fuzz targets, built by make
# with a plain main() (replay.c; $BUILD/fuzz/replay_*): no clang or libFuzzer needed. Every
# input runs in its own process; a crash or a broken invariant fails that input.
#   corpus_safetensors/, corpus_npy/   any outcome, no crash
#   tests/data/bad_models/            must be rejected
#   tests/data/npy/*.npy              no crash
#   corpus_png/ok_*, bad_*            must be accepted / rejected
#   crashes_*/ (if present)           inputs that once crashed: must not any more
# Ends with "N passed, N failed, N skipped" (the sum over all runs).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz

p=0 f=0 s=0
run() { # binary args...
    local line
    if [ ! -x "$1" ]; then
        echo "FAIL $1 not built (make)"
        f=$((f + 1))
        return
    fi
    line=$("$@" | tail -n 1)
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
        p=$((p + BASH_REMATCH[1])); f=$((f + BASH_REMATCH[2])); s=$((s + BASH_REMATCH[3]))
        echo "$(basename "$1"): $line"
    else
        echo "FAIL $*: no closing line"
        f=$((f + 1))
    fi
}

run "$OUT/replay_safetensors" tests/fuzz/corpus_safetensors --expect-reject tests/data/bad_models
[ -d tests/fuzz/crashes_safetensors ] && run "$OUT/replay_safetensors" tests/fuzz/crashes_safetensors
run "$OUT/replay_npy" tests/fuzz/corpus_npy tests/data/npy/*.npy
[ -d tests/fuzz/crashes_npy ] && run "$OUT/replay_npy" tests/fuzz/crashes_npy
run "$OUT/replay_png" --expect-accept tests/fuzz/corpus_png/ok_*.png \
    --expect-reject tests/fuzz/corpus_png/bad_*.png
[ -d tests/fuzz/crashes_png ] && run "$OUT/replay_png" tests/fuzz/crashes_png
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
