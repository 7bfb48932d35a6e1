#!/usr/bin/env bash
# Replays the request-parser fuzz corpus (tests/fuzz_server/corpus/, plus crashes/ when
# present) through fuzz_request.c with the shared plain main() (tests/fuzz/replay.c), built by
# make as $BUILD/fuzz_server/replay_request: no clang needed. With FUZZ_SECONDS set and
# clang's libFuzzer present it then also fuzzes for that long (tests/fuzz_server/fuzz.sh).
# Ends with "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BIN=$BUILD/fuzz_server/replay_request
if [ ! -x "$BIN" ]; then
    echo "FAIL: $BIN not built (make)"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
dirs=(tests/fuzz_server/corpus)
[ -d tests/fuzz_server/crashes ] && dirs+=(tests/fuzz_server/crashes)
out=$("$BIN" "${dirs[@]}")
rc=$?
echo "$out"
if [ -n "${FUZZ_SECONDS:-}" ]; then
    bash tests/fuzz_server/fuzz.sh "$FUZZ_SECONDS" || rc=1
fi
exit $rc
