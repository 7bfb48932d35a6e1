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

source tests/fuzz/replay_lib.sh

replay "$OUT/replay_safetensors" tests/fuzz/corpus_safetensors --expect-reject tests/data/bad_models
[ -d tests/fuzz/crashes_safetensors ] && replay "$OUT/replay_safetensors" tests/fuzz/crashes_safetensors
replay "$OUT/replay_npy" tests/fuzz/corpus_npy tests/data/npy/*.npy
[ -d tests/fuzz/crashes_npy ] && replay "$OUT/replay_npy" tests/fuzz/crashes_npy
replay "$OUT/replay_png" --expect-accept tests/fuzz/corpus_png/ok_*.png \
    --expect-reject tests/fuzz/corpus_png/bad_*.png
[ -d tests/fuzz/crashes_png ] && replay "$OUT/replay_png" tests/fuzz/crashes_png
replay_finish
[ "$RF" -eq 0 ]
