#!/usr/bin/env bash
# Builds and runs tests/server/unit_server.c (the daemon's pure modules: request parser,
# auth, base64, errors, metrics, content negotiation) against server/*.c and $BUILD/libedm.a.
# A BUILD whose name contains "asan" adds the sanitizers.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/server-tests
CC=${CC:-cc}
mkdir -p "$OUT"
if [ ! -f "$BUILD/libedm.a" ]; then
    echo "SKIP: $BUILD/libedm.a not built"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
SAN=""
case "$BUILD" in *asan*) SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" ;; esac
CFLAGS="-std=c11 -O1 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror -D_GNU_SOURCE -Iinclude -Iserver $SAN"
if ! $CC $CFLAGS -Itests/unit tests/server/unit_server.c server/json_req.c server/errors.c server/auth.c server/util.c \
    server/metrics.c server/negotiate.c "$BUILD/libedm.a" -fopenmp -lopenblas -ljansson -lpng -lm -lpthread -o "$OUT/unit_server"; then
    echo "FAIL: build of unit_server"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
exec "$OUT/unit_server"
