#!/usr/bin/env bash
# The OpenAPI document (server/openapi.json) against the real daemon: GET /openapi.json
# serves it (a stale build fails here) with its servers entry the address the client used,
# and real responses of every endpoint, success and error, validate against its schemas
# (tests/server/openapi_check.py).
source "$(dirname "$0")/lib.sh"
need_daemon
LIST=$TMP/responses
: >"$LIST"
n=0
rec() { # METHOD PATH [curl args...]: records one real response
    local method=$1 path=$2; shift 2
    n=$((n + 1))
    local f=$TMP/r$n
    local meta
    if [ "$method" = HEAD ]; then
        meta=$(curl -s -I -o /dev/null -w '%{http_code} %{content_type}' "$SRV_URL$path" "$@")
        : >"$f"
    else
        meta=$(curl -s -o "$f" -w '%{http_code} %{content_type}' -X "$method" "$SRV_URL$path" "$@")
    fi
    read -r code ctype <<<"$meta"
    echo "$method $path $code ${ctype:-none} $f" >>"$LIST"
    LAST=$f
}
J=(-H 'Content-Type: application/json')

srv_start oa --model fast="$MODEL_FAST" --model cond="$MODEL_COND" --max-batch 1 --max-queue 1 --max-body 2048 \
    || { fail start; finish; }
curl -s -o "$TMP/served.json" "$SRV_URL/openapi.json"
check "GET /openapi.json is server/openapi.json but for servers (rebuild if not)" \
    cmp -s <(jq -S 'del(.servers)' "$TMP/served.json") <(jq -S 'del(.servers)' server/openapi.json)
eq "servers: the address the client used" "$(jq -c .servers "$TMP/served.json")" "[{\"url\":\"$SRV_URL\"}]"
eq "servers: behind a proxy" "$(curl -s -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Host: edm.example.com' \
    -H 'X-Forwarded-Prefix: /edm' "$SRV_URL/openapi.json" | jq -r '.servers[0].url')" "https://edm.example.com/edm"

rec GET /; rec GET /healthz; rec GET /readyz; rec GET /metrics; rec GET /openapi.json; rec GET /v1/models
rec GET /v1/models/cond; rec GET /v1/models/none
rec HEAD /healthz
rec POST /v1/images/generations "${J[@]}" -d '{"seed": 1, "steps": 3, "n": 2}'
rec POST /v1/images/generations "${J[@]}" -d '{"model": "cond", "class_label": 1, "steps": 3}'
rec POST /v1/images/generations "${J[@]}" -H 'Accept: image/png' -d '{"steps": 3}'
rec POST /v1/images/generations "${J[@]}" -H 'Accept: image/png' -d '{"steps": 3, "n": 2}'
rec POST /v1/images/generations "${J[@]}" -H 'Accept: text/html' -d '{"steps": 3}'
rec POST /v1/images/generations "${J[@]}" -H 'Accept: image/*;q=0.9, application/json;q=0.1' -d '{"steps": 3}'
rec POST /v1/images/generations -d '{"steps": 3, "n": 2, "response_format": "url", "prompt": ""}'
rec POST /v1/images/generations -d 'steps=3'
rec POST /v1/images/generations "${J[@]}" -d '{"model": "cond", "prompt": "1", "size": "8x8", "output_format": "png", "quality": "hd", "style": "vivid", "user": "u"}'
rec POST /v1/images/generations "${J[@]}" -d '{"model": "cond", "prompt": "none of them"}'
rec POST /v1/images/generations "${J[@]}" -d '{"steps": '
rec POST /v1/images/generations "${J[@]}" -d '{"steps": 1}'
rec POST /v1/images/generations "${J[@]}" -d '{"model": "none"}'
rec POST /v1/images/generations -H 'Content-Type: text/plain' -d 'x'
rec POST /v1/images/generations "${J[@]}" --data-binary @<(head -c 4000 /dev/zero | tr '\0' ' ')
rec GET /v1/images/generations
rec OPTIONS /v1/images/generations
rec POST /v1/images/generations "${J[@]}" -d '{"steps": 900, "timeout_ms": 100}'
python3 tests/cli/img2img_check.py pngs "$TMP" # digit.png, mask.png, ...
head -c 3000 /dev/zero >"$TMP/big.bin"
rec POST /v1/images/edits -F image=@"$TMP/digit.png" -F mask=@"$TMP/mask.png" -F prompt=x -F steps=3
rec POST /v1/images/edits -H 'Accept: image/png' -F image=@"$TMP/digit.png" -F steps=3
rec POST /v1/images/variations -F image=@"$TMP/digit.png" -F n=2 -F steps=3 -F response_format=url
rec POST /v1/images/edits -F prompt=x
rec POST /v1/images/edits -F image=@"$TMP/digit.png" -F n=1 -F n=2
rec POST /v1/images/edits "${J[@]}" -d '{}'
rec POST /v1/images/variations -F image=@"$TMP/big.bin"
rec GET /v1/images/variations
rec POST /v1/images/generations "${J[@]}" -d "{\"init_image\": \"$(base64 -w0 "$TMP/digit.png")\", \"steps\": 3}"
rec POST /v1/images/generations "${J[@]}" -d '{"init_image": "x"}'
rec POST /v1/jobs "${J[@]}" -d '{"seed": 3, "steps": 4}'
id=$(jq -r .id "$LAST")
rec GET "/v1/jobs/$id/events"
rec GET "/v1/jobs/$id/events" -H 'Last-Event-ID: 2'
rec GET "/v1/jobs/$id/events" -H 'Last-Event-ID: 7'
rec GET /v1/jobs; rec GET '/v1/jobs?limit=1'; rec GET '/v1/jobs?limit=0'; rec GET '/v1/jobs?after=job_unknown'
rec GET "/v1/jobs/$id"
rec GET "/v1/jobs/$id/images/0"
rec GET "/v1/jobs/$id/images/1"
rec DELETE "/v1/jobs/$id"
rec GET /v1/jobs/job_unknown
rec GET /v1/jobs/job_unknown/events
rec POST /v1/jobs "${J[@]}" -d '{"seed": 4, "steps": 900}'
long=$(jq -r .id "$LAST")
sleep 0.3
rec GET "/v1/jobs/$long"
rec POST /v1/jobs "${J[@]}" -d '{"seed": 5, "steps": 3}'
queued=$(jq -r .id "$LAST")
rec GET "/v1/jobs/$queued"
rec GET "/v1/jobs/$queued/images/0"
rec POST /v1/images/generations "${J[@]}" -d '{"steps": 3}'
rec POST /v1/jobs "${J[@]}" -d '{"steps": 3}'
rec DELETE "/v1/jobs/$long"
rec GET "/v1/jobs/$long/events"
rec DELETE "/v1/jobs/$queued"
rec GET "/v1/jobs/$queued"
check "stop exits 0" srv_stop

srv_start oakey --model "$MODEL_FAST" --api-key k || { fail start; finish; }
rec GET /v1/models
rec POST /v1/images/generations "${J[@]}" -d '{}'
rec GET /openapi.json
rec GET /healthz
job=$(curl -s -X POST "$SRV_URL/v1/jobs" "${J[@]}" -H 'Authorization: Bearer k' -d '{"steps": 700}' | jq -r .id)
kill -TERM "$SRV_PID"
sleep 0.2
rec GET /readyz
rec POST /v1/images/generations "${J[@]}" -H 'Authorization: Bearer k' -d '{}'
rec POST /v1/jobs "${J[@]}" -H 'Authorization: Bearer k' -d '{}'
rec GET "/v1/jobs/$job" -H 'Authorization: Bearer k'
curl -s -o /dev/null -X DELETE -H 'Authorization: Bearer k' "$SRV_URL/v1/jobs/$job"
rc=0; wait "$SRV_PID" || rc=$?; SRV_PID=""
eq "stop exits 0" "$rc" 0

out=$(python3 tests/server/openapi_check.py server/openapi.json "$LIST")
echo "$out" | grep -v '^RESULT' >&2
read -r _ p f <<<"$(echo "$out" | grep '^RESULT' || echo "RESULT 0 1")"
T_PASS=$((T_PASS + p)); T_FAIL=$((T_FAIL + f))
codes=$(awk '{print $3}' "$LIST" | sort -u | tr '\n' ' ')
echo "statuses seen: $codes"
for c in 200 202 204 400 401 404 405 406 409 413 415 429 503 504; do
    check "status $c exercised" grep -q " $c " "$LIST"
done
finish
