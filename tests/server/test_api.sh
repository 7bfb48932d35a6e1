#!/usr/bin/env bash
# Every endpoint and every error of the API against the real daemon: health, readiness,
# models, metrics, OpenAPI; synchronous generation as JSON and as PNG (the PNGs decode to
# the model's shape; NFE = 2*steps-1 for Heun, steps for Euler); conditional models and
# labels; asynchronous jobs, their images and their event stream (ids, Last-Event-ID, 204);
# the queue view (GET /v1/jobs); OpenAI's fields (prompt, size, response_format url) and model
# objects; curl habits (curl -d, Accept q-values, image/*); the error shape and its status
# codes (400, 404, 405, 406, 409, 413, 415).
source "$(dirname "$0")/lib.sh"
need_daemon
srv_start api --model fast="$MODEL_FAST" --model rgb="$MODEL_RGB" --model cond="$MODEL_COND" --max-n 8 \
    --max-body 4096 || { fail "daemon start"; finish; }

# ---- health, readiness, models, metrics, openapi -----------------------------------------
out=$(get /healthz); eq "healthz status" "$(status_of "$out")" 200
eq "healthz body" "$(body_of "$out" | jq -r .status)" ok
out=$(get /readyz); eq "readyz" "$(status_of "$out")" 200
eq "HEAD healthz" "$(curl -s -o /dev/null -w '%{http_code}' -I "$SRV_URL/healthz")" 200
out=$(get /v1/models); eq "models status" "$(status_of "$out")" 200
m=$(body_of "$out")
eq "models count" "$(jq '.data | length' <<<"$m")" 3
eq "default model" "$(jq -r '.data[] | select(.default) | .id' <<<"$m")" fast
eq "rgb shape" "$(jq -c '.data[] | select(.id == "rgb") | [.resolution, .channels, .label_dim]' <<<"$m")" "[16,3,0]"
eq "cond label_dim" "$(jq -r '.data[] | select(.id == "cond") | .label_dim' <<<"$m")" 3
eq "model fields" "$(jq -c '.data[0] | [has("preconditioner"), has("architecture"), (.parameters > 0), .default_steps]' <<<"$m")" "[true,true,true,18]"
ct=$(curl -s -o "$TMP/metrics" -w '%{content_type}' "$SRV_URL/metrics")
check "metrics content type" grep -q '^text/plain' <<<"$ct"
check "metrics names all edm_" bash -c "! grep -v '^#' '$TMP/metrics' | grep -v '^edm_' | grep -q ."
for name in edm_queue_depth edm_requests_total edm_images_total edm_denoiser_evaluations_total \
    edm_batch_size_bucket edm_queue_wait_seconds_bucket edm_request_duration_seconds_bucket edm_rejections_total; do
    check "metric $name present" grep -q "^$name" "$TMP/metrics"
done
out=$(get /openapi.json); eq "openapi status" "$(status_of "$out")" 200
eq "openapi version" "$(body_of "$out" | jq -r .openapi)" 3.1.0

# ---- synchronous generation, JSON ---------------------------------------------------------
out=$(post /v1/images/generations '{"n": 2, "seed": 7, "steps": 4}')
eq "generate status" "$(status_of "$out")" 200
r=$(body_of "$out")
eq "generate seeds" "$(jq -c '[.data[].seed]' <<<"$r")" "[7,8]"
eq "generate indexes" "$(jq -c '[.data[].index]' <<<"$r")" "[0,1]"
eq "generate nfe = 2*steps-1" "$(jq -c '[.nfe, .steps, .data[0].nfe, .data[1].nfe]' <<<"$r")" "[7,4,7,7]"
eq "generate model" "$(jq -r .model <<<"$r")" fast
eq "unconditional label is null" "$(jq -c '[.data[].class_label]' <<<"$r")" "[null,null]"
eq "timings present" "$(jq -c '.timings | [(.queue_ms >= 0), (.sampling_ms > 0), (.encode_ms > 0), (.total_ms >= .sampling_ms)]' <<<"$r")" "[true,true,true,true]"
eq "batch figures" "$(jq -c '[(.batch.mean_size >= 2), .batch.max_size >= 2]' <<<"$r")" "[true,true]"
jq -r '.data[0].b64_json' <<<"$r" >"$TMP/a.b64"
python3 tests/server/pngtool.py b64 "$TMP/a.b64" "$TMP/a.png"
eq "PNG decodes to 8x8x1" "$(pnginfo "$TMP/a.png")" "8 8 1"
eq "PNG text: seed and steps" "$(python3 tests/server/pngtool.py text "$TMP/a.png" Seed) $(python3 tests/server/pngtool.py text "$TMP/a.png" Steps)" "7 4"
eq "PNG text: the sampler's settings" "$(python3 tests/server/pngtool.py text "$TMP/a.png" Sampler)" \
    "edm steps=4 nfe=7 sigma_min=0.002 sigma_max=80 rho=7 S_churn=0 S_min=0 S_max=inf S_noise=1"
out=$(post /v1/images/generations '{"model": "rgb", "seed": 3, "steps": 3}')
jq -r '.data[0].b64_json' <<<"$(body_of "$out")" >"$TMP/rgb.b64"
python3 tests/server/pngtool.py b64 "$TMP/rgb.b64" "$TMP/rgb.png"
eq "RGB PNG decodes to 16x16x3" "$(pnginfo "$TMP/rgb.png")" "16 16 3"
out=$(post /v1/images/generations '{"steps": 5, "solver": "euler"}')
eq "euler nfe = steps" "$(body_of "$out" | jq .nfe)" 5
out=$(post /v1/images/generations '{"steps": 3, "disc": "vp", "schedule": "vp", "scaling": "vp"}')
eq "ablation vp sampler" "$(status_of "$out")" 200
out=$(post /v1/images/generations '{"steps": 3, "alpha": 0.5}')
eq "alpha: the ablation sampler, heun" "$(status_of "$out") $(body_of "$out" | jq .nfe)" "200 5"
jq -r '.data[0].b64_json' <<<"$(body_of "$out")" >"$TMP/alpha.b64"
python3 tests/server/pngtool.py b64 "$TMP/alpha.b64" "$TMP/alpha.png"
check "PNG text: the ablation settings" grep -q "^ablation steps=3 .* solver=heun disc=edm schedule=linear scaling=none alpha=0.5$" \
    <<<"$(python3 tests/server/pngtool.py text "$TMP/alpha.png" Sampler)"
out=$(post /v1/images/generations '{"steps": 3, "S_churn": 10, "S_min": 0.01, "S_max": "inf", "S_noise": 1.007, "sigma_min": 0.01, "sigma_max": 50, "rho": 5}')
eq "stochastic sampler settings" "$(status_of "$out")" 200
out=$(post /v1/images/generations '{"steps": 3}')
s1=$(body_of "$out" | jq .data[0].seed)
check "random seed reported" test "$s1" -ge 0
out=$(curl -s -w '\n%{http_code}' -X POST "$SRV_URL/v1/images/generations")
eq "empty POST (every default)" "$(status_of "$out")" 200
eq "default steps" "$(body_of "$out" | jq .steps)" 18

# the same seed twice: the same bytes
post /v1/images/generations '{"seed": 11, "steps": 4}' | sed '$d' | jq -r .data[0].b64_json >"$TMP/s1.b64"
post /v1/images/generations '{"seed": 11, "steps": 4}' | sed '$d' | jq -r .data[0].b64_json >"$TMP/s2.b64"
check "same seed, same image" cmp -s "$TMP/s1.b64" "$TMP/s2.b64"
post /v1/images/generations '{"seeds": [12, 11], "steps": 4}' | sed '$d' | jq -r .data[1].b64_json >"$TMP/s3.b64"
check "seed 11 inside seeds list, same image" cmp -s "$TMP/s1.b64" "$TMP/s3.b64"

# ---- synchronous generation, PNG ----------------------------------------------------------
code=$(curl -s -D "$TMP/h" -o "$TMP/p.png" -w '%{http_code}' -X POST "$SRV_URL/v1/images/generations" \
    -H 'Content-Type: application/json' -H 'Accept: image/png' -d '{"model": "rgb", "seed": 5, "steps": 3}')
eq "PNG status" "$code" 200
hdr() { grep -i "^$1:" "$TMP/h" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }
eq "PNG content type" "$(hdr Content-Type)" image/png
eq "X-EDM-NFE" "$(hdr X-EDM-NFE)" 5
eq "X-EDM-Seed" "$(hdr X-EDM-Seed)" 5
check "Server-Timing" grep -qi '^Server-Timing: queue;dur=.*sampling;dur=.*encode;dur=.*total;dur=' "$TMP/h"
check "X-Request-Id" grep -qi '^X-Request-Id: req_' "$TMP/h"
eq "raw PNG decodes" "$(pnginfo "$TMP/p.png")" "16 16 3"
code=$(curl -s -o "$TMP/e.json" -w '%{http_code}' -X POST "$SRV_URL/v1/images/generations" \
    -H 'Content-Type: application/json' -H 'Accept: image/png' -d '{"n": 2, "steps": 3}')
eq "PNG with n=2: 406" "$code" 406
eq "406 code" "$(jq -r .error.code "$TMP/e.json")" not_acceptable
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$SRV_URL/v1/images/generations" -H 'X-Request-Id: my-id-42' \
    -D "$TMP/h2" -H 'Content-Type: application/json' -d '{"steps": 2}')
check "client X-Request-Id echoed" grep -qi '^X-Request-Id: my-id-42' "$TMP/h2"

# ---- conditional model ---------------------------------------------------------------------
out=$(post /v1/images/generations '{"model": "cond", "class_label": 2, "n": 2, "steps": 3}')
eq "class_label" "$(body_of "$out" | jq -c '[.data[].class_label]')" "[2,2]"
out=$(post /v1/images/generations '{"model": "cond", "class_labels": [0, null, 1], "seed": 1, "steps": 3}')
eq "class_labels gives n" "$(body_of "$out" | jq '.data | length')" 3
l=$(body_of "$out" | jq -c '[.data[0].class_label, .data[2].class_label, (.data[1].class_label | . >= 0 and . < 3)]')
eq "class_labels (null drawn from the seed)" "$l" "[0,1,true]"
out=$(post /v1/images/generations '{"model": "cond", "seed": 1, "steps": 3}')
l1=$(body_of "$out" | jq .data[0].class_label)
out=$(post /v1/images/generations '{"model": "cond", "seed": 1, "steps": 3}')
eq "drawn label depends only on the seed" "$(body_of "$out" | jq .data[0].class_label)" "$l1"

# ---- errors: one shape, the right status, the field named ---------------------------------
err_case() { # desc body status code param
    local out; out=$(post /v1/images/generations "$2")
    eq "$1: status" "$(status_of "$out")" "$3"
    eq "$1: code/param" "$(body_of "$out" | jq -c '[.error.code, .error.param, (.error.message | length > 0)]')" "[\"$4\",$5,true]"
}
err_case "invalid JSON" '{"steps": ' 400 invalid_json null
err_case "not an object" '[1, 2]' 400 invalid_json null
err_case "duplicate key" '{"n": 1, "n": 2}' 400 invalid_json null
err_case "unknown field" '{"stepz": 4}' 400 invalid_parameter '"stepz"'
err_case "steps < 2" '{"steps": 1}' 400 invalid_parameter '"steps"'
err_case "steps > max" '{"steps": 100000}' 400 invalid_parameter '"steps"'
err_case "steps real" '{"steps": 4.0}' 400 invalid_parameter '"steps"'
err_case "steps string" '{"steps": "4"}' 400 invalid_parameter '"steps"'
err_case "n = 0" '{"n": 0}' 400 invalid_parameter '"n"'
err_case "n > max-n" '{"n": 9}' 400 invalid_parameter '"n"'
err_case "negative seed" '{"seed": -1}' 400 invalid_parameter '"seed"'
err_case "seed and seeds" '{"seed": 1, "seeds": [1]}' 400 invalid_parameter '"seeds"'
err_case "seeds vs n" '{"seeds": [1, 2], "n": 3}' 400 invalid_parameter '"seeds"'
err_case "empty seeds" '{"seeds": []}' 400 invalid_parameter '"seeds"'
err_case "sigma_min <= 0" '{"sigma_min": 0}' 400 invalid_parameter '"sigma_min"'
err_case "sigma_max < sigma_min" '{"sigma_min": 5, "sigma_max": 1}' 400 invalid_parameter '"sigma_max"'
err_case "sigma range empty for the model" '{"sigma_min": 500}' 400 invalid_parameter '"sigma_min"'
err_case "rho string" '{"rho": "7"}' 400 invalid_parameter '"rho"'
err_case "S_churn < 0" '{"S_churn": -1}' 400 invalid_parameter '"S_churn"'
err_case "S_min > S_max" '{"S_min": 2, "S_max": 1}' 400 invalid_parameter '"S_min"'
err_case "unknown solver" '{"solver": "rk4"}' 400 invalid_parameter '"solver"'
err_case "unknown disc" '{"disc": "cosine"}' 400 invalid_parameter '"disc"'
err_case "unknown schedule" '{"schedule": 1}' 400 invalid_parameter '"schedule"'
err_case "unknown scaling" '{"scaling": "x"}' 400 invalid_parameter '"scaling"'
err_case "alpha out of (0, 1]" '{"alpha": 2}' 400 invalid_parameter '"alpha"'
err_case "timeout_ms 0" '{"timeout_ms": 0}' 400 invalid_parameter '"timeout_ms"'
err_case "label on unconditional model" '{"class_label": 1}' 400 invalid_parameter '"class_label"'
err_case "label out of range" '{"model": "cond", "class_label": 3}' 400 invalid_parameter '"class_label"'
err_case "labels out of range" '{"model": "cond", "class_labels": [0, 7]}' 400 invalid_parameter '"class_labels"'
err_case "unknown model" '{"model": "nope"}' 404 model_not_found '"model"'
err_case "model not a string" '{"model": 3}' 400 invalid_parameter '"model"'

out=$(curl -s -w '\n%{http_code}' -X POST "$SRV_URL/v1/images/generations" -H 'Content-Type: text/plain' -d 'hello')
eq "415 status" "$(status_of "$out")" 415
eq "415 code" "$(body_of "$out" | jq -r .error.code)" unsupported_media_type
out=$(curl -s -w '\n%{http_code}' -X POST "$SRV_URL/v1/images/generations" -H 'Content-Type:' -d '{"steps": 2}')
eq "415 without Content-Type" "$(status_of "$out")" 415
out=$(curl -s -w '\n%{http_code}' -X POST "$SRV_URL/v1/images/generations" -H 'Content-Type: application/json; charset=utf-8' -d '{"steps": 2}')
eq "JSON with charset accepted" "$(status_of "$out")" 200
head -c 5000 /dev/zero | tr '\0' ' ' >"$TMP/big.json"
out=$(curl -s -w '\n%{http_code}' -X POST "$SRV_URL/v1/images/generations" -H 'Content-Type: application/json' --data-binary @"$TMP/big.json")
eq "413 (Content-Length)" "$(status_of "$out")" 413
eq "413 code" "$(body_of "$out" | jq -r .error.code)" payload_too_large
out=$(curl -s -w '\n%{http_code}' -X POST "$SRV_URL/v1/images/generations" -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/big.json")
eq "413 (chunked)" "$(status_of "$out")" 413
out=$(curl -s -D "$TMP/h405" -w '\n%{http_code}' "$SRV_URL/v1/images/generations")
eq "405 status" "$(status_of "$out")" 405
eq "405 code" "$(body_of "$out" | jq -r .error.code)" method_not_allowed
check "405 Allow header" grep -qi '^Allow: POST' "$TMP/h405"
out=$(curl -s -w '\n%{http_code}' -X PUT "$SRV_URL/v1/models")
eq "405 PUT models" "$(status_of "$out")" 405
out=$(get /v1/nothing)
eq "404 route" "$(status_of "$out")" 404
eq "404 code" "$(body_of "$out" | jq -r .error.code)" not_found
out=$(curl -s -D "$TMP/hopt" -o /dev/null -w '%{http_code}' -X OPTIONS "$SRV_URL/v1/jobs")
eq "OPTIONS" "$out" 204
check "OPTIONS Allow" grep -qi '^Allow: GET, HEAD, POST, OPTIONS' "$TMP/hopt"

# ---- routing: the path patterns, their captures and the Allow header ----------------------
allow_of() { curl -s -D - -o /dev/null "$@" | tr -d '\r' | sed -n 's/^[Aa]llow: //p'; }
eq "405 Allow (GET route)" "$(allow_of -X POST "$SRV_URL/healthz")" "GET, HEAD, OPTIONS"
eq "405 Allow (POST route)" "$(allow_of "$SRV_URL/v1/images/generations")" "POST, OPTIONS"
eq "Allow (GET and POST rows of one path)" "$(allow_of -X DELETE "$SRV_URL/v1/jobs")" "GET, HEAD, POST, OPTIONS"
eq "405 Allow (job)" "$(allow_of -X POST "$SRV_URL/v1/jobs/x")" "GET, HEAD, DELETE, OPTIONS"
eq "OPTIONS Allow (job image)" "$(allow_of -X OPTIONS "$SRV_URL/v1/jobs/x/images/0")" "GET, HEAD, OPTIONS"
eq "HEAD on a POST route: 405" "$(curl -s -o /dev/null -w '%{http_code}' -I "$SRV_URL/v1/images/generations")" 405
eq "DELETE events: 405" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$SRV_URL/v1/jobs/x/events")" 405
eq "OPTIONS unknown path: 404" "$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS "$SRV_URL/v1/nothing")" 404
for p in /healthz/ /v1/jobs/ /v1/jobs//events /v1/jobs/x/ /v1/jobs/x/other /v1/jobs/x/images/ \
    /v1/jobs/x/images/1a /v1/jobs/x/images/-1 /v1/jobs/x/images/1234567 /v1/jobs/x/events/ /nope.js \
    "/v1/jobs/$(printf 'j%.0s' $(seq 64))"; do
    eq "no route $p" "$(body_of "$(get "$p")" | jq -r .error.code)" not_found
done
eq "63-character id is a job id" "$(body_of "$(get "/v1/jobs/$(printf 'j%.0s' $(seq 63))")" | jq -r .error.code)" job_not_found
eq "6-digit image index is routed" "$(body_of "$(get /v1/jobs/x/images/999999)" | jq -r .error.code)" job_not_found
for p in / /index.html /app.js /style.css; do
    eq "web $p" "$(curl -s -o /dev/null -w '%{http_code}' "$SRV_URL$p")" 200
done
eq "web / is the page" "$(curl -s -o /dev/null -w '%{content_type}' "$SRV_URL/")" "$(curl -s -o /dev/null -w '%{content_type}' "$SRV_URL/index.html")"
eq "405 Allow (web)" "$(allow_of -X POST "$SRV_URL/")" "GET, HEAD, OPTIONS"
out=$(curl -s -w '\n%{http_code}' "$SRV_URL/healthz" --data-binary @"$TMP/big.json" -X GET -H 'Content-Type: application/json')
eq "GET with a body past max-body: 413" "$(status_of "$out")" 413

# ---- asynchronous jobs ---------------------------------------------------------------------
code=$(curl -s -D "$TMP/hj" -o "$TMP/j.json" -w '%{http_code}' -X POST "$SRV_URL/v1/jobs" \
    -H 'Content-Type: application/json' -d '{"model": "rgb", "n": 2, "seed": 21, "steps": 4}')
eq "job 202" "$code" 202
id=$(jq -r .id "$TMP/j.json")
check "job Location" grep -qi "^Location: /v1/jobs/$id" "$TMP/hj"
check "job status at creation" grep -Eq '"status":"(queued|running)"' "$TMP/j.json"
ev=$(timeout 60 curl -s -N "$SRV_URL/v1/jobs/$id/events")
events=$(grep '^event:' <<<"$ev" | cut -d' ' -f2 | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
eq "SSE events" "$events" "queuedx1 runningx1 progressx4 completedx1 "
eq "SSE last progress" "$(grep '^data:' <<<"$ev" | sed -n 6p | cut -c7- | jq -c '[.step, .steps, .nfe, .nfe_total]')" "[4,4,14,14]"
out=$(get "/v1/jobs/$id"); j=$(body_of "$out")
eq "job completed" "$(jq -r .status <<<"$j")" completed
eq "job progress" "$(jq -c '.progress' <<<"$j")" '{"steps_done":4,"steps":4,"nfe_done":14,"nfe_total":14}'
eq "job result" "$(jq -c '[.result.data[].seed, .result.nfe, (.result.data[1].url | endswith("/images/1"))]' <<<"$j")" "[21,22,7,true]"
code=$(curl -s -o "$TMP/j1.png" -w '%{http_code} %{content_type}' "$SRV_URL/v1/jobs/$id/images/1")
eq "job image" "$code" "200 image/png"
eq "job image decodes" "$(pnginfo "$TMP/j1.png")" "16 16 3"
jq -r '.result.data[1].b64_json' <<<"$j" >"$TMP/j1.b64"
python3 tests/server/pngtool.py b64 "$TMP/j1.b64" "$TMP/j1b.png"
check "b64 and raw image agree" cmp -s "$TMP/j1.png" "$TMP/j1b.png"
eq "image index out of range" "$(status_of "$(get "/v1/jobs/$id/images/2")")" 404
ev2=$(timeout 10 curl -s -N "$SRV_URL/v1/jobs/$id/events" | grep -c '^event:')
eq "SSE replay of a finished job" "$ev2" 7
out=$(curl -s -w '\n%{http_code}' -X DELETE "$SRV_URL/v1/jobs/$id")
eq "cancel finished job: 409" "$(status_of "$out")" 409
eq "409 code" "$(body_of "$out" | jq -r .error.code)" job_finished
out=$(get /v1/jobs/job_00000000000000000000000000000000)
eq "unknown job 404" "$(status_of "$out")" 404
eq "unknown job code" "$(body_of "$out" | jq -r .error.code)" job_not_found
eq "unknown job events 404" "$(status_of "$(get /v1/jobs/nope/events)")" 404
eq "unknown job image 404" "$(status_of "$(get /v1/jobs/nope/images/0)")" 404
eq "unknown job delete 404" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$SRV_URL/v1/jobs/nope")" 404
out=$(post /v1/jobs '{"steps": 1}')
eq "job validation 400" "$(status_of "$out")" 400
eq "POST /v1/jobs/{id}: 405" "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$SRV_URL/v1/jobs/$id")" 405
# Idempotency-Key: a retried POST answers the job the first one made, not a new one
out=$(post /v1/jobs '{"seed": 3, "steps": 3}' -H 'Idempotency-Key: retry-1')
id1=$(body_of "$out" | jq -r .id)
out=$(post /v1/jobs '{"seed": 3, "steps": 3}' -H 'Idempotency-Key: retry-1' -D "$TMP/hi2")
eq "Idempotency-Key: the same job" "$(body_of "$out" | jq -r .id)" "$id1"
eq "Idempotency-Key: the replay is a 202" "$(status_of "$out")" 202
check "Idempotency-Key: the replay says so" grep -qi '^Idempotent-Replayed: true' "$TMP/hi2"
out=$(post /v1/jobs '{"seed": 3, "steps": 3}' -H 'Idempotency-Key: retry-2')
check "Idempotency-Key: another key, another job" test "$(body_of "$out" | jq -r .id)" != "$id1"
out=$(post /v1/jobs '{"seed": 4, "steps": 3}' -H 'Idempotency-Key: retry-1')
eq "Idempotency-Key with another body: 422 idempotency_key_reused" \
    "$(status_of "$out") $(body_of "$out" | jq -r '[.error.code, .error.param] | join(" ")')" "422 idempotency_key_reused Idempotency-Key"
check "Idempotency-Key with another body: the message names the first job" grep -q "$id1" <<<"$(body_of "$out")"
out=$(post /v1/jobs '{}' -H "Idempotency-Key: $(printf 'k%.0s' $(seq 65))")
eq "Idempotency-Key of 65 characters: 400" "$(status_of "$out") $(body_of "$out" | jq -r .error.param)" "400 Idempotency-Key"

# ---- event ids, retry, Last-Event-ID, 204 after the end ------------------------------------
eq "SSE ids: 1 to steps+3" "$(grep '^id:' <<<"$ev" | cut -d' ' -f2 | tr '\n' ' ')" "1 2 3 4 5 6 7 "
eq "SSE retry first" "$(head -n 1 <<<"$ev")" "retry: 1000"
ev3=$(timeout 10 curl -s -N -H 'Last-Event-ID: 4' "$SRV_URL/v1/jobs/$id/events")
eq "Last-Event-ID 4: the events after it" "$(grep '^id:' <<<"$ev3" | cut -d' ' -f2 | tr '\n' ' ')" "5 6 7 "
eq "Last-Event-ID of the final event: 204" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Last-Event-ID: 7' "$SRV_URL/v1/jobs/$id/events")" 204
eq "a Last-Event-ID that is no id: the whole story" "$(timeout 10 curl -s -N -H 'Last-Event-ID: x' "$SRV_URL/v1/jobs/$id/events" | grep -c '^id:')" 7

# ---- the queue view: GET /v1/jobs ------------------------------------------------------------
for k in 1 2 3; do post /v1/jobs "{\"steps\": 2, \"seed\": $k}" | sed '$d' | jq -r .id; done >"$TMP/ids"
newest=$(tail -n 1 "$TMP/ids")
out=$(get '/v1/jobs?limit=2'); l=$(body_of "$out")
eq "jobs list: a page, newest first" "$(jq -c '[.object, (.data | length), .data[0].id == "'"$newest"'", .has_more, .first_id == .data[0].id, .last_id == .data[1].id]' <<<"$l")" '["list",2,true,true,true,true]'
eq "jobs list: entries are jobs" "$(jq -c '[.data[0] | .object, has("status"), has("progress"), has("created"), .model]' <<<"$l")" '["job",true,true,true,"fast"]'
# walk every page (other checks above made jobs too): each id once, newest first, ending
# with has_more false, and the jobs of this test in the order they were made
ids=$(jq -r '.data[].id' <<<"$l"); page=$l pages=1
while [ "$(jq -r .has_more <<<"$page")" = true ] && [ "$pages" -lt 50 ]; do
    page=$(body_of "$(get "/v1/jobs?limit=2&after=$(jq -r .last_id <<<"$page")")")
    ids=$(printf '%s\n%s' "$ids" "$(jq -r '.data[].id' <<<"$page")"); pages=$((pages + 1))
done
eq "jobs list: the pages end" "$(jq -r .has_more <<<"$page")" false
eq "jobs list: each job once" "$(sort <<<"$ids" | uniq -d | wc -l)" 0
eq "jobs list: newest first, the first job last of these" \
    "$(grep -xF -f <(printf '%s\n' "$id"; tac "$TMP/ids") <<<"$ids" | tr '\n' ' ')" \
    "$(tac "$TMP/ids" | tr '\n' ' ')$id "
eq "jobs list: limit 0 is a 400" "$(status_of "$(get '/v1/jobs?limit=0')")" 400
eq "jobs list: an unknown after is a 400" "$(status_of "$(get '/v1/jobs?after=job_nope')")" 400

# ---- OpenAI's Images fields, models, errors' type ------------------------------------------
out=$(get /v1/models/cond); m=$(body_of "$out")
eq "GET /v1/models/{id}" "$(status_of "$out") $(jq -c '[.id, .object, (.created > 0), .owned_by, .size, .class_names, .limits.max_n]' <<<"$m")" \
    '200 ["cond","model",true,"edm-serve","8x8",[["0"],["1"],["2"]],8]'
eq "model sampler ranges" "$(jq -c '[.sampler.steps.maximum, .sampler.steps.default, .sampler.alpha.exclusiveMinimum, .sampler.solver.enum]' <<<"$m")" '[1000,18,0,["euler","heun"]]'
eq "GET /v1/models/{unknown}: 404" "$(status_of "$(get /v1/models/dall-e-3)")" 404
out=$(post /v1/images/generations '{"model": "cond", "prompt": "2", "n": 2, "steps": 2, "size": "8x8", "quality": "hd", "style": "vivid", "user": "u", "output_format": "png"}')
eq "prompt names the class" "$(status_of "$out") $(body_of "$out" | jq -c '[.data[].class_label]')" "200 [2,2]"
err_case "prompt: not a class" '{"model": "cond", "prompt": "seven"}' 400 invalid_parameter '"prompt"'
err_case "prompt against class_label" '{"model": "cond", "prompt": "1", "class_label": 2}' 400 invalid_parameter '"prompt"'
err_case "size not the model's" '{"size": "1024x1024"}' 400 invalid_parameter '"size"'
err_case "response_format" '{"response_format": "png"}' 400 invalid_parameter '"response_format"'
eq "errors have OpenAI's type" "$(post /v1/images/generations '{"n": 0}' | sed '$d' | jq -r .error.type)" invalid_request_error
out=$(post /v1/images/generations '{"n": 2, "steps": 2, "seed": 3, "response_format": "url"}')
urls=$(body_of "$out" | jq -r '.data[].url')
check "response_format url: absolute URLs" grep -q "^$SRV_URL/v1/jobs/job_.*/images/1$" <<<"$urls"
eq "response_format url: no bytes" "$(body_of "$out" | jq -c '[.data[] | has("b64_json")]')" "[false,false]"
eq "the URL serves the PNG" "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$(head -n 1 <<<"$urls")")" "200 image/png"
eq "URLs behind a proxy" "$(post /v1/images/generations '{"steps": 2, "response_format": "url"}' -H 'X-Forwarded-Proto: https' \
    -H 'X-Forwarded-Host: edm.example.com, inner' -H 'X-Forwarded-Prefix: /x/' | sed '$d' | jq -r '.data[0].url' | cut -d/ -f1-6)" "https://edm.example.com/x/v1/jobs"
eq "a crafted Host is not echoed" "$(post /v1/images/generations '{"steps": 2, "response_format": "url"}' -H 'X-Forwarded-Host: a"b<c>' \
    | sed '$d' | jq -r '.data[0].url' | cut -d/ -f1-3)" "$SRV_URL"

# ---- curl habits: curl -d (form-encoded) JSON, Accept with q-values and image/* ------------
out=$(curl -s -w '\n%{http_code}' -X POST "$SRV_URL/v1/images/generations" -d '{"steps": 2, "seed": 4}')
eq "curl -d JSON (form-encoded): accepted" "$(status_of "$out") $(body_of "$out" | jq -c '[.data[0].seed]')" "200 [4]"
out=$(curl -s -w '\n%{http_code}' -X POST "$SRV_URL/v1/images/generations" -d 'steps=2&seed=4')
eq "a real form: 415" "$(status_of "$out") $(body_of "$out" | jq -r .error.code)" "415 unsupported_media_type"
accept() { curl -s -o /dev/null -w '%{http_code} %{content_type}' -X POST "$SRV_URL/v1/images/generations" -d '{"steps": 2}' -H "Accept: $1"; }
eq "Accept: image/*" "$(accept 'image/*')" "200 image/png"
eq "Accept: q-values prefer JSON" "$(accept 'image/png;q=0.5, application/json')" "200 application/json"
eq "Accept: q-values prefer PNG" "$(accept 'application/json;q=0.2, image/png;q=0.9')" "200 image/png"
eq "Accept: */*" "$(accept '*/*')" "200 application/json"
eq "Accept: image/png;q=0 alone: 406" "$(accept 'image/png;q=0')" "406 application/json"
eq "Accept: image/webp: 406" "$(accept 'image/webp')" "406 application/json"
eq "Accept: image/* with n=2 and JSON acceptable: JSON" "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' -X POST \
    "$SRV_URL/v1/images/generations" -d '{"steps": 2, "n": 2}' -H 'Accept: image/*, application/json;q=0.1')" "200 application/json"

# ---- the access log: one JSON line per request ---------------------------------------------
check "stop exits 0" srv_stop
n_lines=$(wc -l <"$TMP/api.access")
check "access log has lines" test "$n_lines" -gt 50
check "access log lines are JSON with status" bash -c "jq -e 'has(\"status\") and has(\"request_id\") and has(\"duration_ms\")' '$TMP/api.access' >/dev/null"
dups=$(jq -r .request_id "$TMP/api.access" | sort | uniq -d | grep -vc '^my-id-42$')
eq "one line per request id" "$dups" 0
finish
