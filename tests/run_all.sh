#!/usr/bin/env bash
# Runs every test tier and prints one closing line: "N passed, N failed, N skipped".
#   unit/conformance: every build/tests/*/test_* binary (each ends with its own N/N/N line)
#   scripts:          every tests/*/test_*.sh (same convention)
# A program that exits non-zero without a closing line counts as one failure.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
total_p=0 total_f=0 total_s=0
run_one() {
    local name=$1; shift
    local log; log=$(mktemp)
    local start=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n 1)
    local p=0 f=0 s=0
    if [ -n "$line" ]; then
        read -r p _ f _ s _ <<<"${line//,/}"
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=$((f + 1)); fi
    total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
    if [ "$f" -ne 0 ]; then
        echo "FAIL $name (exit $rc, $((SECONDS - start))s): $p passed, $f failed, $s skipped"
        # the failed checks first (they may be far from the end), then the end of the output
        grep -E '^ *FAIL' "$log" | head -n 20 | sed 's/^/    /'
        echo "    ---- last lines:"
        tail -n 30 "$log" | sed 's/^/    /'
    else
        echo "ok   $name ($((SECONDS - start))s): $p passed, $s skipped"
        grep '^SKIP' "$log" | sed 's/^/    /' | head -n 5
    fi
    rm -f "$log"
}
for t in "$BUILD"/tests/*/test_*; do
    [ -x "$t" ] || continue
    run_one "$t" "$t"
done
for t in tests/*/test_*.sh; do
    [ -f "$t" ] || continue
    run_one "$t" bash "$t"
done
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]
