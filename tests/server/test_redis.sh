#!/usr/bin/env bash
# The Redis job store (server/jobstore_redis.c) with a real Redis and two replicas: a job
# created on one replica is followed, read, fetched and cancelled through the other; an
# Idempotency-Key holds across replicas; while Redis is down job requests say so (503
# job_store_unavailable, Retry-After), /readyz names the outage (503 on the replica with
# ready-needs-job-store 1, 200 on the other: a shared Redis's outage must not take every
# replica out of its balancer) and synchronous generation goes on; a replica that never
# reached Redis is not ready; Redis killed
# with SIGKILL (AOF, fsync always) and restarted while jobs are being submitted loses no job
# it acknowledged, and each completes once. (Replica crashes: test_redis_failover.sh.)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/redis_lib.sh"
need_daemon
need_redis
J=(-H 'Content-Type: application/json')

# ---- the options ----------------------------------------------------------------------------
out=$("$EDMD" --job-store 'redis://:s3cret@10.0.0.9:6380/2' --print-config 2>&1)
check "print-config masks the Redis password" bash -c "grep -q '^job-store = redis://\*\*\*\*\*\*\*\*@10.0.0.9:6380/2$' <<<'$out' && ! grep -q s3cret <<<'$out'"
bad_store() { # desc message args...
    local desc=$1 msg=$2 rc=0; shift 2
    "$EDMD" --model "$MODEL_FAST" --port 0 "$@" >/dev/null 2>"$TMP/store.err" || rc=$?
    check "$desc: refused at start" test "$rc" -ne 0
    check "$desc: says '$msg'" grep -q -- "$msg" "$TMP/store.err"
}
bad_store "unknown store" "expected memory or redis://" --job-store 'mysql://x'
bad_store "bad Redis URL" "cannot read 'redis://h:99999'" --job-store 'redis://h:99999'
echo pw >"$TMP/pw"
bad_store "two passwords" "both in the URL and in job-store-password-file" --job-store 'redis://:a@h' \
    --job-store-password-file "$TMP/pw"

redis_start || { fail "redis-server starts"; finish; }
rep_start a --max-batch 4 --max-steps 20000 --ready-needs-job-store 1 || { fail "replica a starts"; finish; }
rep_start b --max-batch 4 --max-steps 20000 || { fail "replica b starts"; finish; }
A=${REP_URL[a]} B=${REP_URL[b]}

# ---- one job, two replicas ---------------------------------------------------------------
code=$(curl -s -D "$TMP/h" -o "$TMP/j.json" -w '%{http_code}' -X POST "$A/v1/jobs" "${J[@]}" -d '{"n": 2, "seed": 21, "steps": 4}')
eq "create on a: 202" "$code" 202
id=$(jq -r .id "$TMP/j.json")
check "create: Location" grep -qi "^Location: /v1/jobs/$id" "$TMP/h"
ev=$(timeout 30 curl -s -N "$B/v1/jobs/$id/events")
events=$(grep '^event:' <<<"$ev" | cut -d' ' -f2 | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
eq "events followed on b" "$events" "queuedx1 runningx1 progressx4 completedx1 "
eq "last progress on b" "$(grep '^data:' <<<"$ev" | sed -n 6p | cut -c7- | jq -c '[.step, .steps, .nfe, .nfe_total]')" "[4,4,14,14]"
eq "completed event names the images" "$(grep '^data:' <<<"$ev" | tail -n 1 | cut -c7- | jq -r '.result.data[1].url')" "/v1/jobs/$id/images/1"
j=$(curl -s "$B/v1/jobs/$id")
eq "read on b: completed" "$(jq -r .status <<<"$j")" completed
eq "read on b: progress" "$(jq -c .progress <<<"$j")" '{"steps_done":4,"steps":4,"nfe_done":14,"nfe_total":14}'
eq "read on b: result" "$(jq -c '[.result.data[].seed, .result.nfe, .result.batch.max_size]' <<<"$j")" "[21,22,7,2]"
code=$(curl -s -o "$TMP/j1.png" -w '%{http_code} %{content_type}' "$B/v1/jobs/$id/images/1")
eq "image on b" "$code" "200 image/png"
jq -r '.result.data[1].b64_json' <<<"$j" >"$TMP/j1.b64"
python3 tests/server/pngtool.py b64 "$TMP/j1.b64" "$TMP/j1b.png"
check "b64 and raw image agree" cmp -s "$TMP/j1.png" "$TMP/j1b.png"
curl -s -o "$TMP/s22.png" -X POST "$A/v1/images/generations" "${J[@]}" -H 'Accept: image/png' -d '{"seed": 22, "steps": 4}'
read -r ndiff maxd _ <<<"$(pngdiff "$TMP/j1.png" "$TMP/s22.png")"
check "the job's image is the seed's image (max difference $maxd)" test "${maxd:-99}" -le 2
eq "image index out of range on a" "$(status_of "$(curl -s -w '\n%{http_code}' "$A/v1/jobs/$id/images/2")")" 404
eq "replay of the events on a" "$(timeout 10 curl -s -N "$A/v1/jobs/$id/events" | grep -c '^event:')" 7
out=$(curl -s -w '\n%{http_code}' -X DELETE "$A/v1/jobs/$id")
eq "cancel a finished job: 409 job_finished" "$(status_of "$out") $(body_of "$out" | jq -r .error.code)" "409 job_finished"
eq "completed once" "$(job_field "$id" completions)" 1
for p in "" /events /images/0; do
    out=$(curl -s -w '\n%{http_code}' "$B/v1/jobs/job_00000000000000000000000000000000$p")
    eq "unknown job$p: 404 job_not_found" "$(status_of "$out") $(body_of "$out" | jq -r .error.code)" "404 job_not_found"
done
eq "unknown job DELETE: 404" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$B/v1/jobs/nope")" 404

# ---- cancel on one replica, while another runs it ------------------------------------------
out=$(curl -s -X POST "$A/v1/jobs" "${J[@]}" -d '{"seed": 5, "steps": 5000}')
long=$(jq -r .id <<<"$out")
code=$(curl -s -o "$TMP/early.json" -w '%{http_code}' "$B/v1/jobs/$long/images/0")
eq "image of an unfinished job: 409 job_not_completed" "$code $(jq -r .error.code "$TMP/early.json")" "409 job_not_completed"
check "the long job runs" await_status "$A" "$long" running 20
runner=$(runner_of "$long")
check "a replica holds its lease (${runner:-none})" test -n "$runner"
if [ -n "$runner" ]; then
    other=a
    [ "$runner" = a ] && other=b
    timeout 30 curl -s -N "${REP_URL[$other]}/v1/jobs/$long/events" >"$TMP/cancel.sse" &
    sse_pid=$!
    sleep 0.5
    SRV_URL=${REP_URL[$runner]}
    before=$(metric 'edm_requests_total{mode="async",outcome="cancelled"}')
    t0=$(date +%s%N)
    out=$(curl -s -w '\n%{http_code}' -X DELETE "${REP_URL[$other]}/v1/jobs/$long")
    eq "cancel on the other replica ($other): 200 cancelled" "$(status_of "$out") $(body_of "$out" | jq -r .status)" "200 cancelled"
    stopped=""
    for i in $(seq 1 100); do
        if [ "$(metric 'edm_requests_total{mode="async",outcome="cancelled"}')" != "$before" ]; then
            stopped=$((($(date +%s%N) - t0) / 1000000))
            break
        fi
        sleep 0.02
    done
    check "the runner ($runner) stopped the job (${stopped:-never} ms after the DELETE)" test -n "$stopped"
    echo "figures (cancel across replicas): DELETE on $other, the run on $runner stopped ${stopped:-never} ms later" \
        "(at step $(job_field "$long" step_done) of 5000)"
    eq "the runner has no image left in its batch" "$(metric edm_images_in_flight)" 0
    nfe1=$(job_field "$long" nfe_done); sleep 0.5
    eq "no progress after the cancel" "$(job_field "$long" nfe_done)" "$nfe1"
    eq "the runner says cancelled too" "$(curl -s "${REP_URL[$runner]}/v1/jobs/$long" | jq -r '[.status, .error.code] | join(" ")')" "cancelled cancelled"
    wait "$sse_pid"
    eq "the other replica's event stream ends with cancelled" "$(grep '^event:' "$TMP/cancel.sse" | tail -n 1)" "event: cancelled"
fi

# ---- Idempotency-Key across replicas --------------------------------------------------------
out=$(curl -s -X POST "$A/v1/jobs" "${J[@]}" -H 'Idempotency-Key: order-77' -d '{"seed": 77, "steps": 3}')
k1=$(jq -r .id <<<"$out")
out=$(curl -s -D "$TMP/hk" -w '\n%{http_code}' -X POST "$B/v1/jobs" "${J[@]}" -H 'Idempotency-Key: order-77' -d '{"seed": 77, "steps": 3}')
eq "the same key on b: the job a made" "$(status_of "$out") $(body_of "$out" | jq -r .id)" "202 $k1"
check "the replay says so" grep -qi '^Idempotent-Replayed: true' "$TMP/hk"
check "the key's job completes" await_status "$B" "$k1" completed 30
eq "the key's job ran once" "$(job_field "$k1" completions)" 1
out=$(curl -s -w '\n%{http_code}' -X POST "$B/v1/jobs" "${J[@]}" -H 'Idempotency-Key: order-77' -d '{"seed": 78, "steps": 3}')
eq "the same key with another body on b: 422" "$(status_of "$out") $(body_of "$out" | jq -r .error.code)" "422 idempotency_key_reused"
# a key written by an edmd before the body's hash was kept ("ID" alone) still replays
rcli set edm:idem:order-old "$k1" ex 60 >/dev/null
out=$(curl -s -w '\n%{http_code}' -X POST "$A/v1/jobs" "${J[@]}" -H 'Idempotency-Key: order-old' -d '{"seed": 9}')
eq "a key without a hash (older edmd): replays its job" "$(status_of "$out") $(body_of "$out" | jq -r .id)" "202 $k1"

# ---- readiness and metrics ------------------------------------------------------------------
eq "readyz on b" "$(curl -s "$B/readyz")" '{"status":"ready"}'
SRV_URL=$B
eq "metrics: the store is up" "$(metric edm_job_store_up)" 1
check "metrics: queue length" test "$(metric edm_job_store_queue_length)" = 0
check "metrics: jobs taken by the replicas" test "$(($(SRV_URL=$A metric 'edm_job_store_jobs_taken_total{how="new"}') + $(metric 'edm_job_store_jobs_taken_total{how="new"}')))" -ge 3

# ---- Redis down: a clear state, synchronous generation goes on --------------------------------
redis_kill
down=""
for i in $(seq 1 100); do
    out=$(curl -s -w '\n%{http_code}' "$A/readyz")
    if [ "$(status_of "$out")" = 503 ]; then down=$(body_of "$out"); break; fi
    sleep 0.05
done
eq "readyz while Redis is down, ready-needs-job-store 1: 503 job_store_unavailable" "$(jq -r .error.code <<<"$down")" job_store_unavailable
check "readyz says why ($(jq -r .error.message <<<"$down"))" grep -q "redis 127.0.0.1:$REDIS_PORT" <<<"$down"
for i in $(seq 1 100); do # b notices the outage at its own next command
    out=$(curl -s -w '\n%{http_code}' "$B/readyz")
    [ "$(body_of "$out" | jq -r '.job_store // empty')" != "" ] && break
    sleep 0.05
done
eq "readyz while Redis is down, by default: 200, still ready" "$(status_of "$out") $(body_of "$out" | jq -r .status)" "200 ready"
check "... and the body names the outage ($(body_of "$out" | jq -r .job_store))" grep -q "unavailable: redis 127.0.0.1:$REDIS_PORT" <<<"$(body_of "$out" | jq -r .job_store)"
eq "metrics while Redis is down: the store is down" "$(SRV_URL=$B metric edm_job_store_up)" 0
code=$(curl -s -D "$TMP/h503" -o "$TMP/b503" -w '%{http_code}' -X POST "$B/v1/jobs" "${J[@]}" -d '{"seed": 1, "steps": 3}')
eq "POST /v1/jobs while Redis is down: 503 job_store_unavailable" "$code $(jq -r .error.code "$TMP/b503")" "503 job_store_unavailable"
check "... with Retry-After" grep -qi '^Retry-After: ' "$TMP/h503"
eq "GET of a job while Redis is down: 503" "$(curl -s -o /dev/null -w '%{http_code}' "$B/v1/jobs/$id")" 503
out=$(curl -s -w '\n%{http_code}' -X POST "$A/v1/images/generations" "${J[@]}" -d '{"seed": 3, "steps": 3}')
eq "synchronous generation while Redis is down: 200" "$(status_of "$out")" 200
redis_start || fail "redis-server restarts"
up=""
for i in $(seq 1 200); do
    # a is ready again; b (ready throughout) no longer names an outage
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$A/readyz")" = 200 ] && [ "$(curl -s "$B/readyz")" = '{"status":"ready"}' ] && { up=1; break; }
    sleep 0.05
done
check "both replicas ready again, and past the outage, once Redis is back" test -n "$up"
eq "a job from before the outage is still there (AOF)" "$(curl -s "$B/v1/jobs/$id" | jq -r .status)" completed

# ---- Redis killed and restarted while jobs are submitted: no acknowledged job is lost -------
submit() { # NAME URL COUNT: one job after another, "code id" per line
    local i out
    for i in $(seq 1 "$3"); do
        out=$(curl -s --max-time 10 -w '\n%{http_code}' -X POST "$2/v1/jobs" "${J[@]}" -d "{\"seed\": $((1000 + i)), \"steps\": 6}")
        echo "$(status_of "$out") $(body_of "$out" | jq -r '.id // .error.code' 2>/dev/null)" >>"$TMP/submit.$1"
        sleep 0.03
    done
}
: >"$TMP/submit.a"; : >"$TMP/submit.b"
submit a "$A" 40 &
pa=$!
submit b "$B" 40 &
pb=$!
sleep 0.7
redis_kill
t_down=$SECONDS
sleep 1
redis_start || fail "redis-server restarts under load"
wait "$pa" "$pb"
cat "$TMP/submit.a" "$TMP/submit.b" >"$TMP/submit"
sent=$(wc -l <"$TMP/submit")
acked=$(awk '$1 == 202 { print $2 }' "$TMP/submit")
n_acked=$(wc -w <<<"$acked")
refused=$(awk '$1 == 503' "$TMP/submit" | wc -l)
lost=0 dups=0
for jid in $acked; do
    await_status "$A" "$jid" completed 60 || { lost=$((lost + 1)); echo "not completed: $jid $(curl -s "$A/v1/jobs/$jid" | head -c 300)" >&2; }
    c=$(job_field "$jid" completions)
    [ "${c:-0}" -gt 1 ] && dups=$((dups + c - 1))
done
echo "figures (Redis SIGKILL and restart under submissions): sent $sent, acknowledged (202) $n_acked," \
    "refused while down (503) $refused, other $((sent - n_acked - refused)), acknowledged jobs lost $lost," \
    "duplicate completions $dups"
check "submissions went on across the outage (202 before and after it)" test "$n_acked" -ge 10
check "jobs were refused with 503 while Redis was down" test "$refused" -ge 1
eq "every answer was a 202 or a 503" "$((n_acked + refused))" "$sent"
eq "no acknowledged job lost" "$lost" 0
eq "no job completed twice" "$dups" 0

check "replica a drains and exits 0" rep_stop a
check "replica b drains and exits 0" rep_stop b

# ---- a Redis with a password, given in a file ------------------------------------------------
rcli config set requirepass hunter2 >/dev/null
echo hunter2 >"$TMP/redis.pw"
if rep_start c --job-store-password-file "$TMP/redis.pw"; then
    out=$(curl -s -X POST "${REP_URL[c]}/v1/jobs" "${J[@]}" -d '{"seed": 9, "steps": 3}')
    check "with the password from a file: a job completes" await_status "${REP_URL[c]}" "$(jq -r .id <<<"$out")" completed 30
    check "replica c drains and exits 0" rep_stop c
else
    fail "a replica with the password from a file starts"
fi
echo wrong >"$TMP/wrong.pw"
"$EDMD" --host 127.0.0.1 --port 0 --port-file "$TMP/d.port" --model "$MODEL_FAST" --backend cpu --compute-threads 1 \
    --job-store "redis://127.0.0.1:$REDIS_PORT" --job-store-password-file "$TMP/wrong.pw" --access-log off >"$TMP/d.log" 2>&1 &
REP_PID[d]=$!
why=""
for i in $(seq 1 100); do
    [ -s "$TMP/d.port" ] && why=$(curl -s "http://127.0.0.1:$(cat "$TMP/d.port")/readyz" | jq -r '.error.message // empty')
    [ -n "$why" ] && break
    sleep 0.05
done
check "a wrong password: not ready, and readyz says why ($why)" grep -qi "AUTH" <<<"$why"
check "... and that it never reached Redis" grep -q "not reached since start" <<<"$why"
check "replica d drains and exits 0" rep_stop d
finish
