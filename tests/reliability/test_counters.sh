#!/usr/bin/env bash
# test_counters.sh - every counter of /metrics equals what the clients saw, after a mixed
# run: successes, 400s, 404s, 405, 409s, 429s, cancellations, clients that leave while
# queued and while in a batch (499), and a drain (tests/reliability/mixed.py). Then the
# daemon, whose drain waited for the last unread job, exits 0 once it is read. Last, 48
# clients whose requests are queued or running leave at the same moment: 48 499s.
source "$(dirname "$0")/../server/lib.sh"
source "$(dirname "$0")/lib.sh"
need_daemon

admin_start counters --model "$MODEL_FAST" --max-batch 2 --max-queue 3 --max-steps 10000 --drain-timeout 60 ||
    { fail start; finish; }
run_py counters mixed.py "$SRV_URL" "$ADMIN_URL" "$SRV_PID"
rc=0; wait "$SRV_PID" || rc=$?; SRV_PID=""
eq "the drain ends once the last job is read: exit 0" "$rc" 0
n=$(grep -c '"status":499' "$TMP/counters.access")
eq "the access log shows both clients that left as 499" "$n" 2

admin_start leave --model "$MODEL_FAST" --max-batch 8 --max-queue 64 --max-steps 10000 || { fail start; finish; }
run_py "clients leaving" mixed.py "$SRV_URL" "$ADMIN_URL" - leave 48
eq "the access log shows 48 requests as 499" "$(grep -c '"status":499' "$TMP/leave.access")" 48
check "stop exits 0" srv_stop
finish
