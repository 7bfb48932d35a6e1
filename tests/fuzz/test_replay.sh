#!/usr/bin/env bash
# Replays the fuzz corpora and the hostile samples through the fuzz targets, built with a
# plain main() (replay.c) by cc: no clang or libFuzzer needed. Every input runs in its own
# process; a crash or a broken invariant fails that input.
#   corpus_safetensors/, corpus_npy/   any outcome, no crash
#   tests/data/bad_models/            must be rejected
#   tests/data/npy/*.npy              no crash
#   crashes_*/ (if present)           inputs that once crashed: must not any more
# Binaries go to $BUILD/fuzz/; a BUILD whose name contains "asan" adds the sanitizers.
# Ends with "N passed, N failed, N skipped" (the sum over all runs).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz
CC=${CC:-cc}
mkdir -p "$OUT"
SAN=""
case "$BUILD" in *asan*) SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" ;; esac
CFLAGS="-std=c11 -O1 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror -D_GNU_SOURCE -Iinclude -Icore $SAN"

p=0 f=0 s=0
build() { # name sources... libs
    local name=$1; shift
    if ! $CC $CFLAGS tests/fuzz/fuzz_$name.c tests/fuzz/replay.c "$@" -o "$OUT/replay_$name"; then
        echo "FAIL build of replay_$name"
        f=$((f + 1))
        return 1
    fi
}
run() { # binary args...
    local line
    line=$("$@" | tail -n 1)
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
        p=$((p + BASH_REMATCH[1])); f=$((f + BASH_REMATCH[2])); s=$((s + BASH_REMATCH[3]))
        echo "$(basename "$1"): $line"
    else
        echo "FAIL $*: no closing line"
        f=$((f + 1))
    fi
}

if build safetensors core/io/safetensors.c core/status.c -ljansson; then
    run "$OUT/replay_safetensors" tests/fuzz/corpus_safetensors \
        --expect-reject tests/data/bad_models
    [ -d tests/fuzz/crashes_safetensors ] && run "$OUT/replay_safetensors" tests/fuzz/crashes_safetensors
fi
if build npy core/io/npy.c core/status.c; then
    run "$OUT/replay_npy" tests/fuzz/corpus_npy tests/data/npy/*.npy
    [ -d tests/fuzz/crashes_npy ] && run "$OUT/replay_npy" tests/fuzz/crashes_npy
fi
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
