#!/bin/sh
# Installs what edm-serve lacks of deps/debian.txt, or says how.
#
#   deps/ensure.sh SET...         SETs of deps/debian.txt: build, test, npm. Finds the missing
#                                 Debian packages with one dpkg-query (milliseconds when nothing
#                                 is missing); as root installs them with apt-get (one update
#                                 first), otherwise prints the apt-get line to run and exits 1.
#                                 Then runs npm ci in each npm folder whose node_modules is
#                                 missing or older than its package-lock.json.
#   deps/ensure.sh --list SET...  prints the entries of SETs, one a line (the Dockerfile's
#                                 build stages install `--list build`)
#
# The Makefile runs it before it builds (see there; NO_INSTALL=1 skips it). Without dpkg-query
# (not Debian) it checks no package and says so.
set -eu
here=$(dirname "$0")
list=$here/debian.txt

entries() { # SET... -> the names listed in those sets, in the file's order
    awk -v sets=" $* " 'NF >= 2 && index(sets, " " $1 " ") { print $2 }' "$list"
}

[ "${1:-}" = --list ] && { listing=1; shift; }
[ $# -gt 0 ] || { echo "usage: $0 [--list] SET... (sets of $list)" >&2; exit 2; }
for s in "$@"; do
    [ -n "$(entries "$s")" ] || { echo "deps: no set '$s' in $list" >&2; exit 2; }
done
if [ -n "${listing:-}" ]; then
    entries "$@"
    exit 0
fi
sets=$*
pkgs=$(entries $(echo " $sets " | sed 's/ npm / /g'))
npm_dirs=$(case " $sets " in *" npm "*) entries npm ;; esac)

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
    if [ -n "$pkgs" ]; then
        # one query for the whole list; a package not installed prints no "ii" line
        installed=" $(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $pkgs 2>/dev/null |
                      awk '$1 == "ii" { printf "%s ", $2 }')"
        for p in $pkgs; do
            case $installed in *" $p "*) ;; *) missing="$missing $p" ;; esac
        done
    fi
    if [ -n "$npm_dirs" ] && ! command -v npm >/dev/null 2>&1; then
        missing="$missing npm"
    fi
else
    echo "deps: no dpkg-query (not Debian): not checking the packages of $list ($sets)" >&2
fi

if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing Debian packages ($sets in $list):$missing" >&2
        echo "deps: to install them, run this (then make again):" >&2
        echo "    sudo apt-get install$missing" >&2
        exit 1
    fi
    echo "deps: installing Debian packages ($sets in $list):$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends $missing >&2
    echo "deps: installed:$missing" >&2
fi

root=$(cd "$here/.." && pwd)
for d in $npm_dirs; do
    [ -f "$root/$d/package-lock.json" ] || continue
    stamp=$root/$d/node_modules/.package-lock.json
    if [ ! -f "$stamp" ] || [ "$root/$d/package-lock.json" -nt "$stamp" ]; then
        echo "deps: npm ci in $d" >&2
        if ! (cd "$root/$d" && npm ci --no-audit --no-fund --loglevel=error >&2); then
            echo "deps: npm ci failed in $d (NO_INSTALL=1 skips this step; the tests that need it skip themselves)" >&2
            exit 1
        fi
    fi
done
