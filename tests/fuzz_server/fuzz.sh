#!/usr/bin/env bash
# Fuzzes the daemon's parsers with libFuzzer for SECONDS each (default 60):
#   tests/fuzz_server/fuzz.sh [SECONDS] [request|multipart ...]    (default: both)
#   request    the JSON request parser (fuzz_request.c; corpus/, request.dict)
#   multipart  the multipart/form-data forms of edits and variations (fuzz_multipart.c;
#              corpus_multipart/, multipart.dict)
# Builds $BUILD/fuzz_server/fuzz_<target> with clang (make fuzz: -fsanitize=fuzzer,address,undefined),
# starts from the committed corpus with the dictionary, and merges new coverage back into it.
# Inputs that crash are written to crashes/ (request) or crashes_multipart/ (replayed by
# test_replay.sh from then on).
set -eu
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-60}
shift || true
TARGETS=${*:-request multipart}
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz_server
CLANG=${CLANG:-clang}
for t in $TARGETS; do
    case $t in
        request) corpus=tests/fuzz_server/corpus crashes=tests/fuzz_server/crashes ;;
        multipart) corpus=tests/fuzz_server/corpus_multipart crashes=tests/fuzz_server/crashes_multipart ;;
        *) echo "unknown target $t (request, multipart)" >&2; exit 2 ;;
    esac
    mkdir -p "$OUT" "$crashes"
    make -s BUILD="$BUILD" CLANG="$CLANG" "$OUT/fuzz_$t"
    rm -rf "$OUT/new_$t"
    mkdir -p "$OUT/new_$t"
    "$OUT/fuzz_$t" -max_total_time="$SECONDS_TO_RUN" -max_len=8192 -dict=tests/fuzz_server/$t.dict \
        -artifact_prefix="$crashes/" "$OUT/new_$t" "$corpus"
    "$OUT/fuzz_$t" -merge=1 "$corpus" "$OUT/new_$t" >/dev/null 2>&1 || true
    rmdir "$crashes" 2>/dev/null || true
    echo "fuzz_$t: corpus now $(ls "$corpus" | wc -l) files"
done
