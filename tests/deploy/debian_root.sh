# shellcheck shell=bash
# Shared by the deploy tests that work in a Debian root made by debootstrap (sourced):
# tests/deploy/test_fresh_root.sh (the README's quick start in it) and test_container.sh (the
# Dockerfile built on it as the Debian base image). The sourcing script sets, before it calls these:
#   OUT     its folder of logs and times.txt          BUILD  the build folder (relative to the repo)
#   WHAT    the name its skip_all lines start with
#
#   pass/fail/skip MSG, finish      one line per check; finish prints "N passed, N failed, N skipped"
#   skip_all REASON                 one SKIP line for the whole test, then finish
#   now, timed NAME START           microseconds; prints "time: NAME: S s" and adds it to $OUT/times.txt
#   tail_log FILE [N]               the last N (25) lines of a log, indented
#   mounted_under DIR, remove_tree DIR   removes a folder only when nothing is mounted under it
#   root_preflight CMD...           skip_all unless root, the commands exist, unshare works and the
#                                   Debian mirror answers; sets MIRROR
#   run_inner VAR DEFAULT ARGS...   runs `bash $0 --inner ARGS...` in a private mount and PID
#                                   namespace (its mounts and processes go with it), for at most
#                                   ${VAR:-DEFAULT} seconds; exits with its status
#   debian_minbase                  the cached minimal root, MINBASE (inside run_inner)
#
# The minimal root, `debootstrap --variant=minbase bookworm` and nothing else (about 200 MB, half
# a minute), is made once and kept in EDM_DEBIAN_MINBASE (default $BUILD/debian-minbase, with
# the line .edm-base saying from where and when); remove the folder to make it again. The
# mirror is the host's apt source for bookworm main (apt-get indextargets), or EDM_DEBIAN_MIRROR.
SUITE=bookworm
REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MINBASE=${EDM_DEBIAN_MINBASE:-$REPO/$BUILD/debian-minbase}
T_PASS=${T_PASS:-0} T_FAIL=${T_FAIL:-0} T_SKIP=${T_SKIP:-0}

pass() { T_PASS=$((T_PASS + 1)); echo "ok   $*"; }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL $*"; }
skip() { T_SKIP=$((T_SKIP + 1)); echo "SKIP $*"; }
finish() {
    echo "$T_PASS passed, $T_FAIL failed, $T_SKIP skipped"
    [ "$T_FAIL" -eq 0 ]
    exit $?
}
skip_all() { skip "$WHAT: $*"; finish; }
now() { echo "${EPOCHREALTIME/./}"; } # microseconds
timed() { # NAME START: prints and records the time since START (now)
    local t
    t=$(awk -v d=$(($(now) - $2)) 'BEGIN { printf "%.1f", d / 1e6 }')
    echo "time: $1: $t s"
    echo "$1: $t s" >>"$OUT/times.txt"
}
tail_log() { tail -n "${2:-25}" "$1" | sed 's/^/    /'; }
mounted_under() { awk -v d="$1" '$5 == d || index($5, d "/") == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; }
remove_tree() { # a folder this test made, only once nothing is mounted under it
    [ -e "$1" ] || return 0
    if mounted_under "$1"; then
        echo "refusing to remove $1: something is mounted under it" >&2
        return 1
    fi
    rm -rf --one-file-system "$1"
}

root_preflight() { # CMD...: what the test runs besides debootstrap, unshare and chroot
    [ "$(id -u)" -eq 0 ] || skip_all "needs root (debootstrap, chroot, mounts)"
    local c p
    for c in debootstrap unshare chroot flock curl "$@"; do
        command -v "$c" >/dev/null 2>&1 && continue
        case $c in
            ip) p=iproute2 ;;
            unshare|nsenter|flock|setsid) p=util-linux ;;
            chroot) p=coreutils ;;
            *) p=$c ;;
        esac
        skip_all "$c not found: apt-get install $p (make test installs the test set of deps/debian.txt)"
    done
    MIRROR=${EDM_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
        'Identifier: Packages' 2>/dev/null | awk -v s="$SUITE" '$2 == s && $3 == "main" { print $1; exit }')}
    MIRROR=${MIRROR:-http://deb.debian.org/debian/}
    curl -fsS --max-time 20 -o /dev/null "${MIRROR%/}/dists/$SUITE/Release" ||
        skip_all "the Debian mirror $MIRROR does not answer"
    unshare --mount --pid --fork --propagation private true 2>/dev/null ||
        skip_all "unshare of a mount and PID namespace refused"
    mkdir -p "$OUT" "$(dirname "$MINBASE")"
    : >"$OUT/times.txt"
}

run_inner() { # VARIABLE DEFAULT ARGS...: bash $0 --inner ARGS... in its own mount and PID
    # namespace, for at most ${VARIABLE:-DEFAULT} seconds
    local var=$1 budget=${!1:-$2} rc
    shift 2
    T_PASS=$T_PASS T_FAIL=$T_FAIL T_SKIP=$T_SKIP BUILD=$BUILD MIRROR=$MIRROR \
        timeout -k 10 "$budget" unshare --mount --pid --fork --kill-child --propagation private --mount-proc \
        bash "$0" --inner "$@"
    rc=$?
    case $rc in
        124|137) fail "$WHAT: ran past its budget of $budget s ($var)"; finish ;;
    esac
    exit "$rc"
}

debian_minbase() { # makes $MINBASE unless it is there; 1 (with a FAIL line) when debootstrap fails
    exec 8>"$MINBASE.lock"
    flock -w 1200 8 || { fail "another run holds $MINBASE.lock"; return 1; }
    if [ -f "$MINBASE/.edm-base" ]; then
        echo "minimal root: $MINBASE ($(cat "$MINBASE/.edm-base"))"
        exec 8>&-
        return 0
    fi
    remove_tree "$MINBASE.new" || { fail "could not remove the unfinished $MINBASE.new"; return 1; }
    local t0 include=()
    t0=$(now)
    case $MIRROR in https:*) include=(--include=ca-certificates) ;; esac
    echo "debootstrap --variant=minbase ${include[*]} $SUITE $MINBASE $MIRROR"
    if ! timeout 1200 debootstrap --variant=minbase "${include[@]}" "$SUITE" "$MINBASE.new" "$MIRROR" \
            >"$OUT/debootstrap.log" 2>&1; then
        fail "debootstrap --variant=minbase $SUITE (log: $OUT/debootstrap.log)"
        tail_log "$OUT/debootstrap.log"
        return 1
    fi
    # what debootstrap downloaded, as Debian's images leave it out
    rm -f "$MINBASE.new"/var/cache/apt/archives/*.deb
    timed "debootstrap --variant=minbase $SUITE" "$t0"
    echo "debootstrap --variant=minbase $SUITE $MIRROR, $(date -u +%F)" >"$MINBASE.new/.edm-base"
    mv "$MINBASE.new" "$MINBASE"
    exec 8>&-
}
