#!/usr/bin/env bash
# Configuration (file < EDMD_* environment < flags, lists replaced not merged), bad options,
# API keys (Bearer, health and metrics exempt), CORS (off by default, allowlist).
source "$(dirname "$0")/lib.sh"
need_daemon
unset $(env | grep -o '^EDMD_[A-Z_]*') 2>/dev/null

cat >"$TMP/a.conf" <<CONF
# a comment
max-batch = 5
max-queue = 7
threads = 3
model = a=x.safetensors
model = b=y.safetensors
cors-origin = https://file.example
CONF
pc() { "$EDMD" "$@" --print-config 2>&1; }
val() { grep "^$1 = " <<<"$2" | head -n 1 | cut -d' ' -f3-; }
out=$(pc --config "$TMP/a.conf")
eq "file: max-batch" "$(val max-batch "$out")" 5
eq "file: models" "$(grep -c '^model = ' <<<"$out")" 2
out=$(EDMD_MAX_BATCH=6 EDMD_MODEL=c=z.safetensors pc --config "$TMP/a.conf")
eq "env over file" "$(val max-batch "$out")" 6
eq "env list replaces file list" "$(grep '^model = ' <<<"$out")" "model = c=z.safetensors"
eq "file still applies where env is silent" "$(val max-queue "$out")" 7
out=$(EDMD_MAX_BATCH=6 EDMD_CONFIG="$TMP/a.conf" pc --max-batch 8 --model d=w.safetensors --threads=9)
eq "flag over env" "$(val max-batch "$out")" 8
eq "flag --x=y form" "$(val threads "$out")" 9
eq "flag list replaces" "$(grep '^model = ' <<<"$out")" "model = d=w.safetensors"
eq "EDMD_CONFIG read" "$(val max-queue "$out")" 7
out=$(pc --api-key secret1)
check "keys masked in --print-config" bash -c "grep -q '^api-key = \*\*\*\*' <<<'$out' && ! grep -q secret1 <<<'$out'"
check "--help lists every option" bash -c "'$EDMD' --help | grep -q -- '--drain-timeout'"
check "--version" bash -c "'$EDMD' --version | grep -q '^edmd '"

bad() { # desc expected-message args...
    local desc=$1 msg=$2; shift 2
    local out rc=0
    out=$("$EDMD" "$@" 2>&1) || rc=$?
    eq "$desc: exit 2" "$rc" 2
    check "$desc: message '$msg'" grep -q -- "$msg" <<<"$out"
}
bad "unknown flag" "unknown option '--nope'" --nope 1
bad "bad integer" "max-batch: expected an integer" --max-batch x
bad "out of range" "port: expected an integer in \[0, 65535\]" --port 70000
bad "missing value" "needs a value" --model
bad "positional" "unexpected argument" stray
printf 'max-batch = 4\nbogus = 1\n' >"$TMP/bad.conf"
bad "unknown key in file" "bad.conf:2: unknown option 'bogus'" --config "$TMP/bad.conf"
bad "missing file" "cannot open" --config "$TMP/none.conf"
rc=0; EDMD_MAX_QUEUE=abc "$EDMD" --print-config >/dev/null 2>"$TMP/env.err" || rc=$?
eq "bad env value: exit 2" "$rc" 2
check "bad env value named" grep -q EDMD_MAX_QUEUE "$TMP/env.err"
rc=0; "$EDMD" --port 0 >/dev/null 2>"$TMP/nomodel.err" || rc=$?
check "no model: fails" test "$rc" -ne 0
check "no model: says so" grep -q "no model" "$TMP/nomodel.err"
rc=0; "$EDMD" --model /nonexistent.safetensors --port 0 >/dev/null 2>"$TMP/badmodel.err" || rc=$?
check "unreadable model: fails" test "$rc" -ne 0
check "unreadable model: named" grep -q nonexistent "$TMP/badmodel.err"
# backends come from the registry: an unknown name lists the known ones; the cpu backend is
# one device, so a second ordinal is an error at start, not a silently dropped worker
rc=0; "$EDMD" --model "$MODEL_FAST" --port 0 --backend tpu >/dev/null 2>"$TMP/be.err" || rc=$?
check "unknown backend: fails" test "$rc" -ne 0
check "unknown backend: names the choices" grep -q "unknown backend 'tpu': expected auto, .*cpu" "$TMP/be.err"
rc=0; "$EDMD" --model "$MODEL_FAST" --port 0 --backend cpu --devices 0,1 >/dev/null 2>"$TMP/dev.err" || rc=$?
check "cpu device 1: fails" test "$rc" -ne 0
check "cpu device 1: says why" grep -q "device 1 does not exist" "$TMP/dev.err"

# config/edmd.conf documents every option and is accepted as it is
for o in $("$EDMD" --help | grep -o '^  --[a-z-]*' | sed 's/^  --//'); do
    case $o in config | print-config | version) continue ;; esac
    check "config/edmd.conf documents $o" grep -Eq "^(# )?$o =" config/edmd.conf
done
check "config/edmd.conf loads" "$EDMD" --config config/edmd.conf --print-config >/dev/null

# ---- loading: /healthz answers, /readyz and the API say 503 until the models are in ------
mkfifo "$TMP/slow.safetensors"
"$EDMD" --host 127.0.0.1 --port 0 --port-file "$TMP/port" --model "$MODEL_FAST" --model "$TMP/slow.safetensors" \
    >"$TMP/loading.log" 2>&1 &
SRV_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
SRV_URL="http://127.0.0.1:$(cat "$TMP/port")"
sleep 0.2
eq "loading: healthz 200" "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL/healthz")" 200
out=$(get /readyz)
eq "loading: readyz 503" "$(status_of "$out")" 503
eq "loading: not_ready" "$(body_of "$out" | jq -r .error.code)" not_ready
out=$(post /v1/images/generations '{}')
eq "loading: generation 503" "$(status_of "$out")" 503
eq "loading: models 503" "$(status_of "$(get /v1/models)")" 503
eq "loading: jobs 503" "$(status_of "$(get /v1/jobs/x)")" 503
eq "loading: job DELETE 503" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$SRV_URL/v1/jobs/x")" 503
eq "loading: openapi 200" "$(status_of "$(get /openapi.json)")" 200
eq "loading: web page 200" "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL/")" 200
eq "loading: unknown path 404" "$(status_of "$(get /v1/nothing)")" 404
eq "loading: edm_ready 0" "$(metric edm_ready)" 0
: >"$TMP/slow.safetensors" # unblocks the load, which then fails: a FIFO is no model file
rc=0; wait "$SRV_PID" || rc=$?; SRV_PID=""
check "a model that fails to load: exit non-zero" test "$rc" -ne 0
check "the failure names the file" grep -q "slow.safetensors" "$TMP/loading.log"

# ---- API keys ---------------------------------------------------------------------------
printf '# keys\nkey-from-file\n\n' >"$TMP/keys"
EDMD_MAX_BATCH=3 srv_start keys --model "$MODEL_FAST" --api-key key-one --api-key-file "$TMP/keys" \
    --cors-origin https://app.example || { fail start; finish; }
eq "env applied at run time" "$(metric edm_max_batch)" 3
gen_status() { curl -s -o /dev/null -w '%{http_code}' -X POST "$SRV_URL/v1/images/generations" \
    -H 'Content-Type: application/json' -d '{"steps": 2}' "$@"; }
eq "no key: 401" "$(gen_status)" 401
out=$(curl -s -D "$TMP/h401" -w '\n%{http_code}' "$SRV_URL/v1/models")
eq "no key models: 401" "$(status_of "$out")" 401
eq "401 code" "$(body_of "$out" | jq -r .error.code)" unauthorized
check "401 WWW-Authenticate" grep -qi '^WWW-Authenticate: Bearer' "$TMP/h401"
eq "wrong key: 401" "$(gen_status -H 'Authorization: Bearer key-onf')" 401
eq "prefix of key: 401" "$(gen_status -H 'Authorization: Bearer key-on')" 401
eq "key plus junk: 401" "$(gen_status -H 'Authorization: Bearer key-one2')" 401
eq "not Bearer: 401" "$(gen_status -H 'Authorization: Basic key-one')" 401
eq "flag key: 200" "$(gen_status -H 'Authorization: Bearer key-one')" 200
eq "file key: 200" "$(gen_status -H 'Authorization: Bearer key-from-file')" 200
eq "scheme case-insensitive: 200" "$(gen_status -H 'Authorization: bearer key-one')" 200
for p in /healthz /readyz /metrics; do
    eq "$p exempt" "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL$p")" 200
done
eq "jobs need the key" "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL/v1/jobs/x")" 401
eq "metrics count 401s" "$(metric 'edm_rejections_total{reason="unauthorized"}')" 7
for p in / /app.js; do
    eq "web $p exempt" "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL$p")" 200
done
eq "openapi needs the key" "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL/openapi.json")" 401
eq "unknown path without key: 404" "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL/v1/nothing")" 404
eq "405 before 401" "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$SRV_URL/v1/models")" 405

# ---- CORS -------------------------------------------------------------------------------
curl -s -D "$TMP/hc" -o /dev/null -H 'Origin: https://app.example' -H 'Authorization: Bearer key-one' "$SRV_URL/v1/models"
check "allowed origin echoed" grep -qi '^Access-Control-Allow-Origin: https://app.example' "$TMP/hc"
check "Vary: Origin" grep -qi '^Vary: Origin' "$TMP/hc"
check "exposed headers" grep -qi '^Access-Control-Expose-Headers:.*X-EDM-NFE' "$TMP/hc"
curl -s -D "$TMP/hc2" -o /dev/null -H 'Origin: https://evil.example' -H 'Authorization: Bearer key-one' "$SRV_URL/v1/models"
check "other origin: no CORS header" bash -c "! grep -qi '^Access-Control-Allow-Origin' '$TMP/hc2'"
code=$(curl -s -D "$TMP/hp" -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: https://app.example' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization, content-type' \
    "$SRV_URL/v1/images/generations")
eq "preflight without key: 204" "$code" 204
check "preflight methods" grep -qi '^Access-Control-Allow-Methods: POST' "$TMP/hp"
check "preflight headers" grep -qi '^Access-Control-Allow-Headers:.*Authorization' "$TMP/hp"
check "stop exits 0" srv_stop

srv_start nocors --model "$MODEL_FAST" --public-url https://edm.example.com/api/ || { fail start; finish; }
curl -s -D "$TMP/hn" -o /dev/null -H 'Origin: https://app.example' "$SRV_URL/v1/models"
check "CORS off by default" bash -c "! grep -qi '^Access-Control-Allow-Origin' '$TMP/hn'"
eq "no keys: open" "$(gen_status)" 200
# --public-url: the image URLs and the OpenAPI servers entry start with it, whatever Host says
eq "public-url: image URLs" "$(post /v1/images/generations '{"steps": 2, "response_format": "url"}' -H 'Host: other:1' \
    | sed '$d' | jq -r '.data[0].url' | cut -d/ -f1-6)" "https://edm.example.com/api/v1/jobs"
eq "public-url: OpenAPI servers" "$(curl -s "$SRV_URL/openapi.json" | jq -r '.servers[0].url')" "https://edm.example.com/api"
check "stop exits 0" srv_stop
rc=0; "$EDMD" --model "$MODEL_FAST" --public-url edm.example.com --print-config >/dev/null 2>"$TMP/pu.err" || rc=$?
check "public-url without a scheme: refused" test "$rc" -ne 0
check "public-url: says why" grep -q "must start with http:// or https://" "$TMP/pu.err"

# ---- listening: a port in use is an error, not a hang -----------------------------------
srv_start first --model "$MODEL_FAST" || { fail start; finish; }
port=$(cat "$TMP/port")
rc=0; timeout 20 "$EDMD" --model "$MODEL_FAST" --port "$port" >/dev/null 2>"$TMP/inuse.err" || rc=$?
check "port in use: exit non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
check "port in use: message" grep -q "cannot listen" "$TMP/inuse.err"
check "stop exits 0" srv_stop
finish
