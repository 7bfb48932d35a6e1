#!/usr/bin/env bash
# test_framing.sh - message framing, bodies past max-body, the headers of every answer
# (tests/reliability/framing.py):
#  - Content-Length with Transfer-Encoding, Transfer-Encoding not ending in chunked, in
#    HTTP/1.0, or conflicting Content-Lengths: a JSON 400 at once, and the connection closes;
#    gzip, chunked: a 501, closed (RFC 9112 section 6);
#  - a body past max-body sent without Expect: 100-continue (http.client, urllib, a raw
#    client that writes everything before reading): the client reads the 413; lingering
#    ends 2 s after a client goes quiet (and 10 s after the answer, long form);
#  - X-Content-Type-Options: nosniff and a Content-Type on every answer of every route;
#  - libmicrohttpd's own answers (malformed Content-Length, 414, 431, 505) leave the daemon
#    healthy (they stay HTML: see README.md, "What libmicrohttpd answers itself").
source "$(dirname "$0")/../server/lib.sh"
source "$(dirname "$0")/lib.sh"
need_daemon

admin_start framing --model "$MODEL_FAST" || { fail start; finish; }
run_py framing framing.py "$SRV_URL" "$ADMIN_URL" 1048576
check "daemon alive" kill -0 "$SRV_PID"
check "stop exits 0" srv_stop
finish
