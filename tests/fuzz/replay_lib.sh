# replay_lib.sh - what the corpus replays share (sourced by tests/fuzz/test_replay.sh and
# tests/fuzz_server/test_replay.sh, not run):
#   replay BINARY ARGS...   runs a replay_* driver (tests/fuzz/replay.c) and adds its closing
#                           line to RP RF RS (a driver not built, or without the line, fails)
#   replay_finish           prints "N passed, N failed, N skipped"
RP=0 RF=0 RS=0
replay() {
    local line
    if [ ! -x "$1" ]; then
        echo "FAIL $1 not built (make)"
        RF=$((RF + 1))
        return
    fi
    line=$("$@" | tail -n 1)
    if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
        RP=$((RP + BASH_REMATCH[1])); RF=$((RF + BASH_REMATCH[2])); RS=$((RS + BASH_REMATCH[3]))
        echo "$(basename "$1"): $line"
    else
        echo "FAIL $*: no closing line"
        RF=$((RF + 1))
    fi
}
replay_finish() { echo "$RP passed, $RF failed, $RS skipped"; }
