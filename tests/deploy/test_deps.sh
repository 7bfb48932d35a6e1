#!/usr/bin/env bash
# deps/debian.txt and deps/ensure.sh, and how make uses them, with stand-ins for dpkg-query,
# apt-get, id and npm (nothing is installed): as root the missing packages are installed with
# one apt-get update and one apt-get install; otherwise the run stops with the sudo apt-get line
# and installs nothing; nothing runs when nothing is missing; npm ci runs where node_modules is
# missing or stale, and Debian's npm is asked for where the command is missing; make checks the
# build set for run and the test set too for test, test-* and asan, and nothing under
# NO_INSTALL=1 or -n. Then the real check on this machine must take well under a second.
# tests/deploy/test_fresh_root.sh proves the whole of it on a fresh Debian root.
set -u
cd "$(dirname "$0")/../.."
REPO=$(pwd)
T_PASS=0 T_FAIL=0 T_SKIP=0
TMP=$(mktemp -d /tmp/edm-deps-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass() { T_PASS=$((T_PASS + 1)); echo "ok   $*"; }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL $*"; }
skip() { T_SKIP=$((T_SKIP + 1)); echo "SKIP $*"; }
check() { # NAME COND-COMMAND...
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

# ---- the list ------------------------------------------------------------------------------
build=$(deps/ensure.sh --list build | tr '\n' ' ')
test_=$(deps/ensure.sh --list test | tr '\n' ' ')
npm_dirs=$(deps/ensure.sh --list npm | tr '\n' ' ')
check "the build set lists build-essential and the libraries (${build% })" \
    grep -q 'build-essential .*libmicrohttpd-dev' <<<"$build"
check "the test set lists what the tests run (${test_% })" grep -q 'python3 .*debootstrap' <<<"$test_"
bad_sets=$(awk 'NF >= 2 && $1 !~ /^#/ && $1 != "build" && $1 != "test" && $1 != "npm" { print NR ": " $1 }' deps/debian.txt)
check "every entry is in the build, test or npm set" test -z "$bad_sets"
dups=$(awk 'NF >= 2 && $1 !~ /^#/ { print $2 }' deps/debian.txt | sort | uniq -d)
check "no entry is listed twice" test -z "$dups"
nolock=""
for d in $npm_dirs; do [ -f "$d/package-lock.json" ] || nolock="$nolock $d"; done
check "every npm folder has a package-lock.json (${npm_dirs% })" test -z "$nolock"
check "a set the list lacks is an error (exit 2), not an empty set" \
    bash -c 'deps/ensure.sh --list bild 2>&1 | grep -q "no set .bild."; [ "${PIPESTATUS[0]}" -eq 2 ]'
check "the CUDA toolkit is not in the list (optional)" bash -c '! grep -Eiq "^[a-z]+ +(nvidia|cuda)" deps/debian.txt'

# ---- stand-ins ------------------------------------------------------------------------------
# $TMP/bin: dpkg-query (every package installed but those in $FAKE_MISSING), apt-get, id
# ($FAKE_UID), npm (writes node_modules/.package-lock.json), and the real tools ensure.sh uses;
# $TMP/bin-nonpm: the same without npm.
mkdir -p "$TMP/bin" "$TMP/bin-nonpm"
cat >"$TMP/bin/dpkg-query" <<'EOF'
#!/bin/sh
echo "dpkg-query $*" >>"$FAKE_LOG"
for a in "$@"; do
    case $a in -*) continue ;; esac
    case " $FAKE_MISSING " in *" $a "*) ;; *) echo "ii  $a" ;; esac
done
EOF
cat >"$TMP/bin/apt-get" <<'EOF'
#!/bin/sh
echo "apt-get $*" >>"$FAKE_LOG"
EOF
cat >"$TMP/bin/id" <<'EOF'
#!/bin/sh
echo "$FAKE_UID"
EOF
cat >"$TMP/bin/npm" <<'EOF'
#!/bin/sh
echo "npm $* in $(pwd)" >>"$FAKE_LOG"
mkdir -p node_modules && : >node_modules/.package-lock.json
EOF
chmod +x "$TMP"/bin/*
for c in sh awk sed dirname cat mkdir; do
    ln -s "$(command -v "$c")" "$TMP/bin/$c"
done
for c in "$TMP"/bin/*; do [ "$(basename "$c")" = npm ] || ln -s "$c" "$TMP/bin-nonpm/"; done
# a copy of deps/ beside stand-in npm folders, so npm ci runs there and not in this checkout
mkdir -p "$TMP/repo"
cp -r deps "$TMP/repo/"
for d in $npm_dirs; do mkdir -p "$TMP/repo/$d" && echo '{}' >"$TMP/repo/$d/package-lock.json"; done

export FAKE_LOG=$TMP/log
ensure() { # PATHDIR UID MISSING SET...: runs the copy's ensure.sh; output in $out, exit in $rc
    local pathdir=$1 uid=$2 missing=$3; shift 3
    : >"$FAKE_LOG"
    out=$(PATH=$pathdir FAKE_UID=$uid FAKE_MISSING=$missing "$TMP/repo/deps/ensure.sh" "$@" 2>&1)
    rc=$?
}
calls() { grep -c "^$1 " "$FAKE_LOG"; }

ensure "$TMP/bin" 0 "" build test npm
check "nothing missing: one dpkg-query, no apt-get (exit $rc)" \
    test "$rc" -eq 0 -a "$(calls dpkg-query)" -eq 1 -a "$(calls apt-get)" -eq 0
check "nothing missing: npm ci in each npm folder without node_modules" \
    test "$(calls npm)" -eq "$(wc -w <<<"$npm_dirs")"
ensure "$TMP/bin" 0 "" build test npm
check "nothing missing, node_modules up to date: nothing runs, nothing printed" \
    test "$rc" -eq 0 -a "$(calls npm)" -eq 0 -a -z "$out"
first_npm=${npm_dirs%% *}
touch -d '+1 minute' "$TMP/repo/$first_npm/package-lock.json"
ensure "$TMP/bin" 0 "" build test npm
check "a package-lock.json newer than node_modules: npm ci there again" \
    grep -q "^npm ci .* in $TMP/repo/$first_npm\$" "$FAKE_LOG"

ensure "$TMP/bin" 0 "libpng-dev jq" build test npm
check "root, two missing: says what it installs" grep -q "^deps: installing .*: libpng-dev jq$" <<<"$out"
check "root, two missing: one apt-get update, then one install of exactly those" \
    test "$(sed -n 1p "$FAKE_LOG" | cut -c1-10)" = dpkg-query -a \
         "$(grep '^apt-get' "$FAKE_LOG" | tr '\n' '|')" = \
         "apt-get update -qq|apt-get install -y -qq --no-install-recommends libpng-dev jq|"

ensure "$TMP/bin" 1000 "libpng-dev jq" build test npm
check "not root, two missing: exit 1 with the line '    sudo apt-get install libpng-dev jq'" \
    test "$rc" -eq 1 -a "$(grep -c '^    sudo apt-get install libpng-dev jq$' <<<"$out")" -eq 1
check "not root: installs nothing and runs no npm ci" test "$(calls apt-get)$(calls npm)" = 00

ensure "$TMP/bin" 1000 "libpng-dev jq" build
check "the build set alone asks only for its own missing package" \
    grep -qx '    sudo apt-get install libpng-dev' <<<"$out"
ensure "$TMP/bin-nonpm" 1000 "" build test npm
check "no npm command: Debian's npm is asked for" grep -qx '    sudo apt-get install npm' <<<"$out"

# ---- make: which sets, and when not ----------------------------------------------------------
mk() { # UID MISSING ARGS...: make with the stand-ins first on PATH
    local uid=$1 missing=$2; shift 2
    : >"$FAKE_LOG"
    # not the outer make's settings: an inherited NO_INSTALL=1 (environment or MAKEFLAGS)
    # would skip the check under test and run the real goal
    out=$(env -u NO_INSTALL -u MAKEFLAGS -u MFLAGS -u MAKELEVEL PATH="$TMP/bin:$PATH" \
          FAKE_UID="$uid" FAKE_MISSING="$missing" make --no-print-directory \
          BUILD="$TMP/build" CUDA=0 "$@" 2>&1)
    rc=$?
}
for goal in run test test-unit asan ""; do
    mk 1000 "libpng-dev jq" $goal
    case $goal in test*|asan) want="libpng-dev jq" ;; *) want="libpng-dev" ;; esac
    check "make ${goal:-(default)}, not root: stops before building with 'sudo apt-get install $want'" \
        test "$rc" -ne 0 -a "$(grep -cx "    sudo apt-get install $want" <<<"$out")" -eq 1 \
             -a ! -e "$TMP/build"
done
mk 1000 "libpng-dev jq" -n run
check "make -n run: no check" test "$(calls dpkg-query)" -eq 0 -a "$rc" -eq 0
mk 1000 "libpng-dev jq" NO_INSTALL=1 "$TMP/build/tools/embed"
check "make NO_INSTALL=1: no check, and it builds" test "$(calls dpkg-query)" -eq 0 -a "$rc" -eq 0 \
    -a -x "$TMP/build/tools/embed"
mk 0 "libpng-dev" "$TMP/build/tools/embed"
check "make as root: installs the missing build package, then builds" \
    grep -qx "apt-get install -y -qq --no-install-recommends libpng-dev" "$FAKE_LOG"

# ---- the real check on this machine -----------------------------------------------------------
t0=$(date +%s%N)
deps/ensure.sh build test >/dev/null 2>&1
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ "$rc" -ne 0 ]; then
    skip "the check takes well under a second: packages are missing here (deps/ensure.sh build test)"
else
    check "the check takes well under a second when nothing is missing ($ms ms)" test "$ms" -lt 700
fi

echo "$T_PASS passed, $T_FAIL failed, $T_SKIP skipped"
[ "$T_FAIL" -eq 0 ]
