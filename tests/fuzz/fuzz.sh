#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (make fuzz) and fuzzes each for SECONDS (default 60).
#   tests/fuzz/fuzz.sh [SECONDS] [safetensors|npy|png ...]
# Works on a scratch copy of the committed corpus under $BUILD/fuzz/ (so the repository is
# not flooded with generated inputs); crashes land in $BUILD/fuzz/crashes_<name>/. To keep a
# crash as a regression input, copy it to tests/fuzz/crashes_<name>/ (test_replay.sh replays it).
set -eu
cd "$(dirname "$0")/../.."
SECS=${1:-60}
shift || true
TARGETS=${*:-safetensors npy png}
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz
CLANG=${CLANG:-clang}
mkdir -p "$OUT"
for t in $TARGETS; do
    [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "unknown target $t" >&2; exit 2; }
    make -s BUILD="$BUILD" CLANG="$CLANG" "$OUT/fuzz_$t"
    rm -rf "$OUT/work_$t"; mkdir -p "$OUT/work_$t" "$OUT/crashes_$t"
    cp tests/fuzz/corpus_$t/* "$OUT/work_$t/"
    dict=""; [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    echo "== fuzz_$t for ${SECS}s"
    "$OUT/fuzz_$t" "$OUT/work_$t" $dict -max_total_time="$SECS" -max_len=4096 -rss_limit_mb=2048 \
        -artifact_prefix="$OUT/crashes_$t/" -print_final_stats=1 2>&1 | tail -n 25
done
