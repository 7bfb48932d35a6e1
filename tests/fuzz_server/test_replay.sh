#!/usr/bin/env bash
# Replays the fuzz corpora of the daemon's parsers with the shared plain main()
# (tests/fuzz/replay.c), built by make as $BUILD/fuzz_server/replay_*: no clang needed.
#   corpus/ (+ crashes/)                   fuzz_request.c, the JSON request parser: no crash
#   corpus_multipart/ok_*, bad_*           fuzz_multipart.c, the edits / variations forms:
#                                          must be read as forms / refused
#   corpus_multipart/ other (+ crashes_multipart/)   the fuzzer's finds: no crash
# With FUZZ_SECONDS set and clang's libFuzzer present it then also fuzzes each for that long
# (tests/fuzz_server/fuzz.sh). Ends with "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz_server
source tests/fuzz/replay_lib.sh
dirs=(tests/fuzz_server/corpus)
[ -d tests/fuzz_server/crashes ] && dirs+=(tests/fuzz_server/crashes)
replay "$OUT/replay_request" "${dirs[@]}"
M=tests/fuzz_server/corpus_multipart
finds=()
for x in "$M"/*; do case $(basename "$x") in ok_* | bad_*) ;; *) finds+=("$x") ;; esac; done
[ -d tests/fuzz_server/crashes_multipart ] && finds+=(tests/fuzz_server/crashes_multipart)
replay "$OUT/replay_multipart" --expect-accept "$M"/ok_* --expect-reject "$M"/bad_* --any "${finds[@]}"
rc=0
[ "$RF" -eq 0 ] || rc=1
if [ -n "${FUZZ_SECONDS:-}" ]; then
    bash tests/fuzz_server/fuzz.sh "$FUZZ_SECONDS" || rc=1
fi
replay_finish
exit $rc
