# lib.sh - helpers of the reliability tier (sourced after tests/server/lib.sh).
#
#   EDM_RELIABILITY_LONG=1   the long form (defaults such as the 10 s header-timeout, bigger
#                            floods, more rounds); the short form runs in make test
#   admin_start NAME [opts]  srv_start with the admin listener on a free port: ADMIN_URL
#   run_py DESC SCRIPT ARGS  runs a driver (relib.py): each "ok"/"FAIL" line is a check,
#                            "figure" lines are shown on stderr (the numbers of the report)
LONG=${EDM_RELIABILITY_LONG:-0}
[ "$LONG" = 0 ] && LONG=
export EDM_RELIABILITY_LONG=${LONG:+1}
# a flood needs descriptors: the drivers and the daemon they start inherit this
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

admin_start() {
    local name=$1; shift
    rm -f "$TMP/$name.aport"
    srv_start "$name" --admin-port 0 --admin-port-file "$TMP/$name.aport" "$@" || return 1
    ADMIN_URL="http://127.0.0.1:$(cat "$TMP/$name.aport")"
}

run_py() {
    local desc=$1 script=$2 out line; shift 2
    out=$(python3 "tests/reliability/$script" "$@" 2>&1)
    while IFS= read -r line; do
        case $line in
            ok*) pass ;;
            FAIL*) fail "$desc: ${line#FAIL }" ;;
            figure*) echo "    $desc: ${line#figure }" >&2 ;;
            "") ;;
            *) echo "    $desc: $line" >&2 ;;
        esac
    done <<<"$out"
    grep -qE '^(ok|FAIL)' <<<"$out" || fail "$desc: $script reported nothing"
}
