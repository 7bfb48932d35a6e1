#!/usr/bin/env bash
# A fresh Debian 12 machine needs nothing but the README's commands: in a minimal Debian root
# (debootstrap --variant=minbase bookworm, plus build-essential), entered with chroot, a clone
# of this repository, with nothing installed by hand:
#   1. as an unprivileged user, `make run` stops at once with the `sudo apt-get install ...` line
#      of the build packages the root lacks, and builds nothing;
#   2. as root, `make run` installs them, builds and serves: /readyz answers 200 and a generation
#      returns a PNG ($BUILD/fresh-root/seven.png); SIGINT (Ctrl-C) then stops it;
#   3. with EDM_TEST_FRESH_ROOT=full, `make test` then installs the test set and runs the whole
#      suite there, which must close with 0 failed.
# Each command's time is printed ("time: ...") and kept in $BUILD/fresh-root/times.txt, with
# the logs of the commands.
#
# Opt-in, as it takes minutes: EDM_TEST_FRESH_ROOT=1 (or full); CI (CI=true) runs it unless
# EDM_TEST_FRESH_ROOT=0. Skipped with the reason otherwise, and where not root, where
# debootstrap, unshare or chroot is missing, where namespaces or mounts are refused, or where the
# Debian mirror does not answer. The mirror is the host's apt source for bookworm main (from
# apt-get indextargets), or EDM_DEBIAN_MIRROR.
# The base root (debootstrap + build-essential, about 700 MB) is kept in EDM_DEBIAN_ROOT
# (default $BUILD/debian-root), so a rerun skips debootstrap; it starts as a copy of the minimal
# root that tests/deploy/debian_root.sh keeps for test_container.sh too ($BUILD/debian-minbase,
# made once). Each run works in an overlay of
# it (a copy where overlayfs is refused), so the base stays as debootstrap left it and every run
# installs from nothing. Everything runs in a private mount and PID namespace (unshare): the
# mounts (the overlay, /proc, /dev) and the processes go with it, and a trap unmounts too.
set -u
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BUILD=${BUILD:-build}
MODE=${EDM_TEST_FRESH_ROOT:-0}
BASE=${EDM_DEBIAN_ROOT:-$REPO/$BUILD/debian-root}
OUT=$REPO/$BUILD/fresh-root
WHAT="fresh Debian root"
RUN=$BASE.run
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
. tests/deploy/debian_root.sh

# the environment in the root: env -i, so nothing of the host's leaks in but how it reaches
# the registries: its proxy variables, and a CA file that Node.js is told to trust (where the
# host names one, for a TLS proxy in front of the npm registry; enter() copies it in)
root_env() {
    local v extra=()
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        [ -n "${!v:-}" ] && extra+=("$v=${!v}")
    done
    [ -f "${NODE_EXTRA_CA_CERTS:-}" ] && extra+=(NODE_EXTRA_CA_CERTS=/etc/host-extra-ca.pem)
    echo /usr/bin/env -i PATH=$CHROOT_PATH HOME=/root LANG=C.UTF-8 TERM=dumb "${extra[@]}"
}

# ---- inside the namespace ---------------------------------------------------------------------
cleanup() {
    # as the namespace's init: first every other process in it (servers the tests left), so
    # that nothing keeps the mounts busy
    [ $$ -eq 1 ] && kill -KILL -1 2>/dev/null && sleep 1
    local m
    for m in "$RUN/root/dev" "$RUN/root/proc" "$RUN/root" "$BASE.new/dev" "$BASE.new/proc"; do
        if mounted_under "$m"; then
            umount -R "$m" || echo "cleanup: could not unmount $m" >&2
        fi
    done
    [ "${EDM_FRESH_ROOT_KEEP:-0}" = 1 ] || remove_tree "$RUN" || echo "cleanup: $RUN left behind" >&2
}

enter() { # ROOT: /proc and /dev for apt, make and edmd; the host's resolv.conf and CA file (root_env)
    mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" &&
        cp /etc/resolv.conf "$1/etc/resolv.conf" || return 1
    [ ! -f "${NODE_EXTRA_CA_CERTS:-}" ] || cp "$NODE_EXTRA_CA_CERTS" "$1/etc/host-extra-ca.pem"
}

make_base() { # the cached minimal root plus build-essential, in $BASE
    if [ -f "$BASE/.edm-base" ]; then
        echo "base root: $BASE ($(cat "$BASE/.edm-base"))"
        return 0
    fi
    debian_minbase || return 1
    remove_tree "$BASE.new" || { fail "could not remove the unfinished $BASE.new"; return 1; }
    local t0
    t0=$(now)
    if ! { cp -a "$MINBASE" "$BASE.new" && enter "$BASE.new" &&
           timeout 900 chroot "$BASE.new" $(root_env) DEBIAN_FRONTEND=noninteractive sh -c \
               'apt-get update -qq && apt-get install -y -qq --no-install-recommends build-essential &&
                apt-get clean'; } >"$OUT/build-essential.log" 2>&1; then
        fail "apt-get install build-essential in a copy of $MINBASE (log: $OUT/build-essential.log)"
        tail_log "$OUT/build-essential.log"
        return 1
    fi
    umount -R "$BASE.new/dev" && umount "$BASE.new/proc" || { fail "could not unmount $BASE.new/dev or /proc"; return 1; }
    timed "apt-get install build-essential" "$t0"
    echo "$(cat "$MINBASE/.edm-base") + build-essential, $(date -u +%F)" >"$BASE.new/.edm-base"
    mv "$BASE.new" "$BASE"
}

work_root() { # an overlay of the base at $RUN/root (a copy where overlayfs is refused)
    remove_tree "$RUN" || return 1
    mkdir -p "$RUN/upper" "$RUN/work" "$RUN/root"
    if mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$RUN/upper,workdir=$RUN/work" "$RUN/root" 2>/dev/null; then
        echo "work root: overlay of the base at $RUN/root"
    else
        echo "work root: overlayfs refused; copying the base to $RUN/root"
        rmdir "$RUN/root" && cp -a "$BASE" "$RUN/root" || return 1
    fi
    enter "$RUN/root"
}

# build-set packages that the root at $1 lacks (what `make run` must ask for)
missing_build_pkgs() {
    local installed
    installed=" $(chroot "$1" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' \
                  $(deps/ensure.sh --list build) 2>/dev/null | awk '$1 == "ii" { printf "%s ", $2 }')"
    for p in $(deps/ensure.sh --list build); do
        case $installed in *" $p "*) ;; *) printf ' %s' "$p" ;; esac
    done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo 18080
}

inner() {
    trap cleanup EXIT
    make_base || finish
    work_root || { fail "could not prepare the work root under $RUN"; finish; }
    local root=$RUN/root
    if ! git clone -q "$REPO" "$root/src"; then
        fail "git clone of $REPO into the root"
        finish
    fi
    echo "clone: $(git -C "$root/src" log -1 --format='%h %s' | cut -c1-80)"
    [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] ||
        echo "note: uncommitted changes in $REPO are not in the clone"

    # 1. unprivileged: stops at once with the apt-get line, builds nothing
    local want t0 out rc
    want=$(missing_build_pkgs "$root")
    t0=$(now)
    out=$(timeout 120 chroot --userspec=65534:65534 "$root" $(root_env | sed 's|HOME=/root|HOME=/nonexistent|') \
              sh -c 'cd /src && make run' 2>&1)
    rc=$?
    timed "make run as an unprivileged user (stops)" "$t0"
    echo "$out" | sed 's/^/    | /'
    if [ "$rc" -ne 0 ] && echo "$out" | grep -qx "    sudo apt-get install$want" && [ ! -e "$root/src/build" ]; then
        pass "unprivileged make run stops at once with 'sudo apt-get install$want' and builds nothing"
    else
        fail "unprivileged make run: exit $rc, wanted the line 'sudo apt-get install$want' and no build/"
    fi

    # 2. root: installs, builds, serves
    local port pid code=000
    port=$(free_port)
    t0=$(now)
    setsid chroot "$root" $(root_env) PORT="$port" sh -c 'cd /src && exec make run' >"$OUT/make-run.log" 2>&1 &
    pid=$!
    local deadline=$((SECONDS + ${EDM_FRESH_ROOT_TIMEOUT:-1500}))
    while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/readyz")
        [ "$code" = 200 ] && break
        sleep 2
    done
    local t_run=$((($(now) - t0) / 1000000))
    if [ "$code" = 200 ]; then
        timed "make run as root, to /readyz 200 (install, build, load)" "$t0"
        pass "make run in the fresh root serves: /readyz 200 after $t_run s"
        grep '^deps:' "$OUT/make-run.log" | sed 's/^/    | /'
        curl -s --max-time 120 -X POST "http://127.0.0.1:$port/v1/images/generations" \
             -H 'Content-Type: application/json' -H 'Accept: image/png' \
             -d '{"class_label": 7, "seed": 42, "steps": 18}' -o "$OUT/seven.png"
        if [ "$(head -c 8 "$OUT/seven.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
            pass "a generation returns a PNG ($(wc -c <"$OUT/seven.png") bytes: $OUT/seven.png)"
        else
            fail "the generation did not return a PNG: $(head -c 300 "$OUT/seven.png" 2>/dev/null)"
        fi
        local leftover
        leftover=$(missing_build_pkgs "$root")
        if [ -z "$leftover" ]; then pass "make run installed the whole build set"
        else fail "still missing after make run:$leftover"; fi
    else
        fail "make run in the fresh root: no /readyz 200 after $t_run s (last: $code; log: $OUT/make-run.log)"
        tail_log "$OUT/make-run.log" 40
    fi
    kill -INT -- -"$pid" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
        fail "make run did not stop within 60 s of SIGINT"
        kill -KILL -- -"$pid" 2>/dev/null
    else
        pass "SIGINT stops make run"
    fi
    wait "$pid" 2>/dev/null

    # 3. full: make test there too
    if [ "$MODE" = full ]; then
        t0=$(now)
        timeout "${EDM_FRESH_ROOT_TEST_TIMEOUT:-3600}" chroot "$root" $(root_env) sh -c 'cd /src && make test' \
            >"$OUT/make-test.log" 2>&1
        rc=$?
        timed "make test as root (install, build, the suite)" "$t0"
        grep -E '^(deps:|FAIL|SKIP|ok )' "$OUT/make-test.log" | sed 's/^/    | /'
        local closing
        closing=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$OUT/make-test.log" | tail -n 1)
        if [ "$rc" -eq 0 ] && [ -n "$closing" ]; then
            pass "make test in the fresh root: $closing"
        else
            fail "make test in the fresh root: exit $rc, ${closing:-no closing line} (log: $OUT/make-test.log)"
            tail_log "$OUT/make-test.log" 40
        fi
    else
        skip "make test in the fresh root: EDM_TEST_FRESH_ROOT=full runs it (adds about 10 minutes)"
    fi
    finish
}

[ "${1:-}" = --inner ] && inner

# ---- outside: can it run here? --------------------------------------------------------------
# CI (CI=true) runs it unless EDM_TEST_FRESH_ROOT=0: only a fresh root notices a package that
# the list lacks, and CI's own machine has them all.
[ "${CI:-}" = true ] && MODE=${EDM_TEST_FRESH_ROOT:-1}
case $MODE in
    1|full) ;;
    *) skip_all "opt-in, takes minutes: EDM_TEST_FRESH_ROOT=1 (or full to run make test there too; CI runs it)" ;;
esac
root_preflight setsid git
mkdir -p "$(dirname "$BASE")"
exec 9>"$BASE.lock"
flock -w 1800 9 || skip_all "another run holds $BASE.lock"
# the whole run is bounded: past the budget the namespace goes, with its processes and mounts
export EDM_TEST_FRESH_ROOT=$MODE
run_inner EDM_FRESH_ROOT_BUDGET "$([ "$MODE" = full ] && echo 5400 || echo 1800)"
