#!/usr/bin/env bash
# test_flood.sh - floods of connections cannot starve the probes or other clients, and slow
# connections are closed at their deadlines (tests/reliability/flood.py):
#  1. 2,048 idle connections from 127.0.0.1, with edmd's defaults: the per-address limit
#     keeps most of them out; /healthz on the admin port and from 127.0.0.2 on the API port
#     is answered throughout, a generation from 127.0.0.2 too; the ones it took are closed at
#     header-timeout;
#  2. 1,100 connections that send a header line every second (slowloris): the same, and
#     they are closed at header-timeout however often they send;
#  3. 1,100 idle connections over 5 addresses, each under the per-address limit, fill the
#     listener: the admin port still answers every probe, and the API port serves 127.0.0.2
#     again once the flood hits header-timeout;
#  4. bodies that trickle a byte every half second are cut at body-timeout (408 in the
#     access log).
# The short form (make test) uses 3 s deadlines; EDM_RELIABILITY_LONG=1 edmd's defaults.
source "$(dirname "$0")/../server/lib.sh"
source "$(dirname "$0")/lib.sh"
need_daemon

if [ -n "$LONG" ]; then H=10 B=30; else H=3 B=3; fi
admin_start flood --model "$MODEL_FAST" --header-timeout "$H" --body-timeout "$B" || { fail start; finish; }
run_py "idle flood" flood.py "$SRV_URL" "$ADMIN_URL" idle 2048 "$H"
run_py "trickle flood" flood.py "$SRV_URL" "$ADMIN_URL" trickle 1100 "$H"
run_py "wide flood" flood.py "$SRV_URL" "$ADMIN_URL" wide 1100 5 "$H"
run_py "slow body" flood.py "$SRV_URL" "$ADMIN_URL" body 3 "$B"

closed() { metric "edm_connections_closed_total{reason=\"$1\"}"; }
SRV_URL=$ADMIN_URL # metrics from the admin listener
check "header-timeout closes are counted ($(closed header_timeout))" test "$(closed header_timeout | cut -d. -f1)" -ge 1000
eq "body-timeout closes are counted" "$(closed body_timeout)" 3
api_conns() { [ "$(metric 'edm_connections{listener="api"}')" = 0 ]; }
for _ in $(seq 1 50); do api_conns && break; sleep 0.1; done
check "no API connection left open" api_conns
check "a cut body is logged as 408" grep -q '"status":408' "$TMP/flood.access"
check "daemon alive" kill -0 "$SRV_PID"
check "stop exits 0" srv_stop
finish
