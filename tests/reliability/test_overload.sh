#!/usr/bin/env bash
# test_overload.sh - more clients than the queue holds (tests/reliability/overload.py):
# every request gets a 200 or a quick 429 with Retry-After, nothing else; the admin port
# answers every probe meanwhile; the queue empties afterwards and the counters agree.
# Short form: 48 clients for 6 s; EDM_RELIABILITY_LONG=1: 192 clients for 30 s.
source "$(dirname "$0")/../server/lib.sh"
source "$(dirname "$0")/lib.sh"
need_daemon

if [ -n "$LONG" ]; then C=192 S=30; else C=48 S=6; fi
admin_start overload --model "$MODEL_FAST" --max-batch 4 --max-queue 8 || { fail start; finish; }
run_py overload overload.py "$SRV_URL" "$ADMIN_URL" "$C" "$S"
check "daemon alive" kill -0 "$SRV_PID"
check "stop exits 0" srv_stop
finish
