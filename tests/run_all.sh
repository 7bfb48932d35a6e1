#!/usr/bin/env bash
# Runs test tiers and prints one closing line: "N passed, N failed, N skipped".
#   tests/run_all.sh [TIER...]        no TIER: every tier, in the order below
# A tier runs the programs of its folders: for each tests/DIR/test_*.c the binary make built,
# $BUILD/tests/DIR/test_* (missing = one failure), then each tests/DIR/test_*.sh script.
# Each program ends with its own "N passed, N failed, N skipped" line; one that exits
# non-zero without a failure in that line counts as one failure. A run of every tier also
# fails a folder of tests/ with test programs that no tier names (add it to folders_of).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD

TIERS=(unit conformance server reliability fuzz deploy web)
folders_of() {
    case $1 in
        unit) echo "unit" ;;                                      # ops, sampler, formats, daemon modules
        conformance) echo "conformance vectors cli converter" ;; # against the official code's output
        server) echo "server clients" ;;                          # the real edmd over HTTP, and real clients
        reliability) echo "reliability" ;;                        # edmd under attack and abuse
        fuzz) echo "fuzz fuzz_server" ;;                          # the corpora replayed
        deploy) echo "deploy" ;;                                  # container (built with podman), Kubernetes, load balancer
        web) echo "web" ;;                                        # the page in a browser
        *) return 1 ;;
    esac
}

tiers=("$@")
[ ${#tiers[@]} -eq 0 ] && tiers=("${TIERS[@]}")
for t in "${tiers[@]}"; do
    if ! folders_of "$t" >/dev/null; then
        echo "run_all.sh: unknown tier '$t' (tiers: ${TIERS[*]})" >&2
        exit 2
    fi
done

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
not_built() {
    echo "FAIL $1 was not built (make)"
    echo "0 passed, 1 failed, 0 skipped"
    return 1
}

for t in "${tiers[@]}"; do
    echo "== $t"
    tier_start=$SECONDS
    p0=$total_p f0=$total_f s0=$total_s
    for d in $(folders_of "$t"); do
        for src in tests/"$d"/test_*.c; do
            [ -f "$src" ] || continue
            bin=$BUILD/tests/$d/$(basename "${src%.c}")
            if [ -x "$bin" ]; then run_one "$bin" "$bin"; else run_one "$bin" not_built "$bin"; fi
        done
        for sh in tests/"$d"/test_*.sh; do
            [ -f "$sh" ] || continue
            run_one "$sh" bash "$sh"
        done
    done
    echo "-- $t: $((total_p - p0)) passed, $((total_f - f0)) failed, $((total_s - s0)) skipped" \
         "($((SECONDS - tier_start))s)"
done
if [ $# -eq 0 ]; then
    claimed=" $(for t in "${TIERS[@]}"; do folders_of "$t"; done | tr '\n' ' ') "
    for d in tests/*/; do
        d=${d%/} && d=${d#tests/}
        [[ $claimed == *" $d "* ]] && continue
        if compgen -G "tests/$d/test_*.c" >/dev/null || compgen -G "tests/$d/test_*.sh" >/dev/null; then
            echo "FAIL tests/$d: its test programs are in no tier (tests/run_all.sh, folders_of)"
            total_f=$((total_f + 1))
        fi
    done
fi
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]
