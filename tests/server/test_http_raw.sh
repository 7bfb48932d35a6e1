#!/usr/bin/env bash
# Malformed and unusual HTTP over raw sockets (tests/server/rawhttp.py): garbage, conflicting
# or absurd Content-Length, huge headers and URLs, invalid UTF-8, deep nesting, truncated
# requests at every prefix, chunked bodies, 100-continue, pipelining. After every case the
# daemon must still answer /healthz, and no request may be left in flight.
source "$(dirname "$0")/lib.sh"
need_daemon
srv_start raw --model "$MODEL_FAST" --max-body 65536 --connection-timeout 2 || { fail start; finish; }
port=$(cat "$TMP/port")
out=$(timeout 300 python3 tests/server/rawhttp.py 127.0.0.1 "$port")
echo "$out" | grep -v '^RESULT' >&2
read -r _ p f <<<"$(echo "$out" | grep '^RESULT' || echo "RESULT 0 1")"
T_PASS=$((T_PASS + p)); T_FAIL=$((T_FAIL + f))
check "daemon alive" kill -0 "$SRV_PID"
check "stop exits 0" srv_stop
finish
