#!/usr/bin/env bash
# test_keys.sh - the API key as an attacker tries it (tests/reliability/keys.py): near misses,
# other schemes, the key in the wrong place, several headers: 401 with WWW-Authenticate,
# each counted; the accepted spellings: 200; probes and metrics need no key on either
# listener, and the admin listener serves nothing else; a 401 to a large body reaches a
# client that writes it all before reading.
source "$(dirname "$0")/../server/lib.sh"
source "$(dirname "$0")/lib.sh"
need_daemon
admin_start keys --model "$MODEL_FAST" --api-key secret-key-1 --api-key second-key-2 || { fail start; finish; }
run_py keys keys.py "$SRV_URL" "$ADMIN_URL" secret-key-1
check "stop exits 0" srv_stop
finish
