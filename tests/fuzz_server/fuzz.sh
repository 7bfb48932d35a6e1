#!/usr/bin/env bash
# Fuzzes the request parser with libFuzzer for SECONDS (default 60):
#   tests/fuzz_server/fuzz.sh [SECONDS]
# Builds $BUILD/fuzz_server/fuzz_request with clang (make fuzz: -fsanitize=fuzzer,address,undefined),
# starts from corpus/ with request.dict, and merges new coverage back into corpus/. Inputs
# that crash are written to crashes/ (replayed by test_replay.sh from then on).
set -eu
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-60}
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz_server
CLANG=${CLANG:-clang}
mkdir -p "$OUT" tests/fuzz_server/crashes
make -s BUILD="$BUILD" CLANG="$CLANG" "$OUT/fuzz_request"
mkdir -p "$OUT/new"
"$OUT/fuzz_request" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -dict=tests/fuzz_server/request.dict \
    -artifact_prefix=tests/fuzz_server/crashes/ "$OUT/new" tests/fuzz_server/corpus
"$OUT/fuzz_request" -merge=1 tests/fuzz_server/corpus "$OUT/new" >/dev/null 2>&1 || true
rmdir tests/fuzz_server/crashes 2>/dev/null || true
echo "fuzz_request: corpus now $(ls tests/fuzz_server/corpus | wc -l) files"
