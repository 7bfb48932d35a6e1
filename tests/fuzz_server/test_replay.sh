#!/usr/bin/env bash
# Replays the request-parser fuzz corpus (tests/fuzz_server/corpus/, plus crashes/ when
# present) through fuzz_request.c with the shared plain main() (tests/fuzz/replay.c), built by cc: no clang
# needed. A BUILD whose name contains "asan" adds the sanitizers. With FUZZ_SECONDS set and
# clang's libFuzzer present it then also fuzzes for that long (tests/fuzz_server/fuzz.sh).
# Ends with "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz_server
CC=${CC:-cc}
mkdir -p "$OUT"
SAN=""
case "$BUILD" in *asan*) SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" ;; esac
CFLAGS="-std=c11 -O1 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror -D_GNU_SOURCE -Iinclude -Iserver -Itests/fuzz $SAN"
# the parser and the two engine files it needs (sampler parameters, status messages)
SRCS="server/json_req.c server/errors.c core/sampler/sampler_params.c core/status.c"
if ! $CC $CFLAGS -Icore tests/fuzz_server/fuzz_request.c tests/fuzz/replay.c $SRCS -ljansson -lm \
    -o "$OUT/replay_request"; then
    echo "FAIL: build of replay_request"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
dirs=(tests/fuzz_server/corpus)
[ -d tests/fuzz_server/crashes ] && dirs+=(tests/fuzz_server/crashes)
out=$("$OUT/replay_request" "${dirs[@]}")
rc=$?
echo "$out"
if [ -n "${FUZZ_SECONDS:-}" ]; then
    bash tests/fuzz_server/fuzz.sh "$FUZZ_SECONDS" || rc=1
fi
exit $rc
