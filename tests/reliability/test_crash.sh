#!/usr/bin/env bash
# test_crash.sh - stopping edmd with work in it (tests/reliability/crash.py): SIGTERM with
# requests running and queued (all 200, new work 503, exit 0 once the unread jobs are read);
# SIGTERM past the drain timeout (one 503 "draining" each, exit 0); kill -9 with requests in
# flight (no client hangs; a restart on the same port serves at once, the old jobs are gone).
source "$(dirname "$0")/../server/lib.sh"
source "$(dirname "$0")/lib.sh"
need_daemon
run_py crash crash.py "$EDMD" "$MODEL_FAST" "$TMP"
finish
