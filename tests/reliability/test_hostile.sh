#!/usr/bin/env bash
# test_hostile.sh - hostile JSON bodies over HTTP (tests/reliability/hostile.py): documents
# that are not JSON or not objects, nested or wide past reason, numbers past every range,
# duplicate keys, odd encodings, then random mutations of valid bodies (300; 3,000 in the
# long form): never a 5xx, always a JSON answer, the daemon stays ready. (Hostile sampler
# settings that parse are test_isolation.sh's.)
source "$(dirname "$0")/../server/lib.sh"
source "$(dirname "$0")/lib.sh"
need_daemon
if [ -n "$LONG" ]; then N=3000; else N=300; fi
srv_start hostile --model "$MODEL_FAST" --max-steps 50 || { fail start; finish; }
run_py hostile hostile.py "$SRV_URL" 1048576 "$N" 7
check "daemon alive" kill -0 "$SRV_PID"
check "stop exits 0" srv_stop
finish
