#!/usr/bin/env bash
# test_logs.sh - log injection (tests/reliability/logs.py): CR/LF (raw and %0d%0a), ESC,
# quotes, backslashes and bytes that are not UTF-8 in the path, query, method, headers and
# echoed JSON fields: one valid JSON access-log line per request, printable ASCII only, no
# forged line; an X-Request-Id that is not plain is replaced; edmd's own log stays clean.
source "$(dirname "$0")/../server/lib.sh"
source "$(dirname "$0")/lib.sh"
need_daemon
srv_start logs --model "$MODEL_FAST" || { fail start; finish; }
run_py logs logs.py "$SRV_URL" "$TMP/logs.access" "$SRV_LOG"
check "stop exits 0" srv_stop
finish
