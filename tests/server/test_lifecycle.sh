#!/usr/bin/env bash
# Cancellation, deadlines, a full queue, client disconnects, SIGTERM: every accepted
# request gets exactly one terminal answer, and work that nobody waits for stops.
source "$(dirname "$0")/lib.sh"
need_daemon

PIDS=()
bg_gen() { # file body [curl options]: a synchronous request in the background; status in file.code
    local f=$1 b=$2; shift 2
    (curl -s -o "$f" -w '%{http_code}' -X POST "$SRV_URL/v1/images/generations" \
        -H 'Content-Type: application/json' -d "$b" "$@" >"$f.code") &
    PIDS+=($!)
}
wait_all() { [ ${#PIDS[@]} -eq 0 ] || wait "${PIDS[@]}"; PIDS=(); }
job_field() { curl -s "$SRV_URL/v1/jobs/$1" | jq -r "$2"; }
wait_until() { # seconds command...: polls until the command succeeds
    local t=$1; shift
    local end=$((SECONDS + t))
    while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.05; done
    return 1
}
running_with_progress() { [ "$(job_field "$1" '.progress.steps_done > 0')" = true ]; }
idle_worker() { [ "$(metric edm_images_in_flight)" -eq 0 ]; }

# ==== 1. cancellation and deadlines (max batch 1: one job runs, the rest queue) ==========
# "long" jobs (10,000 steps, the engine's most) outlast any check, however loaded the machine: they end
# only by being cancelled or by their deadline
srv_start life --model rgb="$MODEL_RGB" --max-batch 1 --max-queue 3 --retry-after 2 --sse-keepalive 0.2 \
    --job-ttl 1 --max-steps 10000 || { fail start; finish; }

long=$(post /v1/jobs '{"seed": 1, "steps": 10000}' | sed '$d' | jq -r .id)
check "long job starts running" wait_until 20 running_with_progress "$long"
queued=$(post /v1/jobs '{"seed": 2, "steps": 3}' | sed '$d' | jq -r .id)
eq "second job waits" "$(job_field "$queued" .status)" queued
(timeout 30 curl -s -N "$SRV_URL/v1/jobs/$queued/events" >"$TMP/queued.sse") &
sse_pid=$!
sleep 0.7 # the queued job's stream idles: keep-alive comments
out=$(curl -s -w '\n%{http_code}' -X DELETE "$SRV_URL/v1/jobs/$queued")
eq "cancel queued job: 200" "$(status_of "$out")" 200
eq "cancel queued job: cancelled, never ran" "$(body_of "$out" | jq -c '[.status, .progress.nfe_done, .error.code]')" '["cancelled",0,"cancelled"]'
wait "$sse_pid"
eq "SSE of the cancelled job" "$(grep '^event:' "$TMP/queued.sse" | cut -d' ' -f2 | tr '\n' ' ')" "queued cancelled "
check "an idle stream sends keep-alive comments" grep -q '^: keepalive' "$TMP/queued.sse"

(timeout 30 curl -s -N "$SRV_URL/v1/jobs/$long/events" >"$TMP/long.sse") &
sse_pid=$!
sleep 0.3
ev_before=$(metric edm_denoiser_evaluations_total)
out=$(curl -s -w '\n%{http_code}' -X DELETE "$SRV_URL/v1/jobs/$long")
eq "cancel running job: 200" "$(status_of "$out")" 200
eq "cancel running job: cancelled" "$(body_of "$out" | jq -r .status)" cancelled
check "running job leaves the batch" wait_until 5 idle_worker
ev_after=$(metric edm_denoiser_evaluations_total)
sleep 0.3
eq "no evaluations after the cancel settles" "$(metric edm_denoiser_evaluations_total)" "$ev_after"
check "the cancel came at most a tick after the request" test $((ev_after - ev_before)) -lt 200
wait "$sse_pid"
check "SSE of the running job ends with cancelled" bash -c "grep '^event:' '$TMP/long.sse' | tail -n 1 | grep -q cancelled"
check "SSE had progress before" grep -q '^event: progress' "$TMP/long.sse"
eq "cancelled job images: 409" "$(status_of "$(get "/v1/jobs/$long/images/0")")" 409
out=$(curl -s -w '\n%{http_code}' -X DELETE "$SRV_URL/v1/jobs/$long")
eq "cancel twice: 409" "$(status_of "$out")" 409
expired() { [ "$(status_of "$(get "/v1/jobs/$queued")")" = 404 ]; }
check "a finished job expires after --job-ttl" wait_until 5 expired

# deadline while running (sync) and while queued (async)
out=$(post /v1/images/generations '{"seed": 3, "steps": 10000, "timeout_ms": 300}')
eq "deadline while running: 504" "$(status_of "$out")" 504
eq "504 error" "$(body_of "$out" | jq -c '[.error.code, .error.param]')" '["deadline_exceeded","timeout_ms"]'
check "deadline frees the worker" wait_until 5 idle_worker
long=$(post /v1/jobs '{"seed": 4, "steps": 10000}' | sed '$d' | jq -r .id)
check "long job 2 runs" wait_until 20 running_with_progress "$long"
late=$(post /v1/jobs '{"seed": 5, "steps": 3, "timeout_ms": 200}' | sed '$d' | jq -r .id)
late_failed() { [ "$(job_field "$late" .status)" = failed ]; }
check "deadline while queued: job failed" wait_until 5 late_failed
eq "deadline while queued: error" "$(job_field "$late" '[.error.code, .progress.nfe_done] | map(tostring) | join(" ")')" "deadline_exceeded 0"

# a full queue: 429 with Retry-After, while the accepted work completes
for i in 1 2 3; do bg_gen "$TMP/q$i.json" "{\"seed\": $((10 + i)), \"steps\": 3}"; done
full_queue() { [ "$(metric edm_queue_depth)" -eq 3 ]; }
check "queue fills" wait_until 10 full_queue
out=$(curl -s -D "$TMP/h429" -w '\n%{http_code}' -X POST "$SRV_URL/v1/images/generations" -H 'Content-Type: application/json' -d '{"steps": 3}')
eq "queue full: 429" "$(status_of "$out")" 429
eq "429 code" "$(body_of "$out" | jq -r .error.code)" queue_full
check "429 Retry-After" grep -qi '^Retry-After: 2' "$TMP/h429"
eq "async job on a full queue: 429" "$(status_of "$(post /v1/jobs '{"steps": 3}')")" 429
curl -s -o /dev/null -X DELETE "$SRV_URL/v1/jobs/$long"
wait_all
for i in 1 2 3; do eq "accepted request $i completed" "$(cat "$TMP/q$i.json.code")" 200; done

# a client that disconnects stops its images' work
c0=$(metric 'edm_requests_total{mode="sync",outcome="cancelled"}')
curl -s -o /dev/null --max-time 0.5 -X POST "$SRV_URL/v1/images/generations" -H 'Content-Type: application/json' -d '{"seed": 6, "steps": 10000}'
gone() { [ "$(metric 'edm_requests_total{mode="sync",outcome="cancelled"}')" -eq $((c0 + 1)) ]; }
check "disconnected client's request cancelled" wait_until 5 gone
check "its images left the worker" wait_until 5 idle_worker
ev=$(metric edm_denoiser_evaluations_total); sleep 0.3
eq "no work after the disconnect" "$(metric edm_denoiser_evaluations_total)" "$ev"
check "stop exits 0" srv_stop

# ==== 2. SIGTERM with requests in flight loses none ======================================
srv_start drain --model rgb="$MODEL_RGB" --max-batch 4 --drain-timeout 60 || { fail start; finish; }
# enough work that the drain is still under way when the checks below run, on a fast machine too
for i in $(seq 1 8); do bg_gen "$TMP/d$i.json" "{\"seed\": $i, \"steps\": $((150 + 10 * i))}"; done
job=$(post /v1/jobs '{"seed": 99, "steps": 150, "n": 2}' | sed '$d' | jq -r .id)
(timeout 60 curl -s -N "$SRV_URL/v1/jobs/$job/events" >"$TMP/drain.sse") &
sse_pid=$!
sleep 0.3
kill -TERM "$SRV_PID"
sleep 0.1
out=$(get /readyz)
eq "draining: readyz 503" "$(status_of "$out")" 503
eq "draining: code" "$(body_of "$out" | jq -r .error.code)" draining
out=$(curl -s -D "$TMP/h503" -w '\n%{http_code}' -X POST "$SRV_URL/v1/images/generations" -H 'Content-Type: application/json' -d '{}')
eq "draining: new work 503" "$(status_of "$out")" 503
check "draining: Retry-After" grep -qi '^Retry-After:' "$TMP/h503"
eq "draining: healthz still 200" "$(status_of "$(get /healthz)")" 200
eq "draining: new job 503" "$(status_of "$(post /v1/jobs '{}')")" 503
eq "draining: models still 200" "$(status_of "$(get /v1/models)")" 200
eq "draining: DELETE is not refused" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$SRV_URL/v1/jobs/nope")" 404
wait_all
for i in $(seq 1 8); do eq "in-flight request $i answered 200" "$(cat "$TMP/d$i.json.code")" 200; done
wait "$sse_pid"
check "in-flight async job completed (SSE)" bash -c "grep '^event:' '$TMP/drain.sse' | tail -n 1 | grep -q completed"
# its images exist only in this process: the drain keeps serving them until they are read
sleep 0.5
check "drain waits for the unread job result" kill -0 "$SRV_PID"
check "the wait is logged" grep -q '1 finished job not read yet' "$TMP/drain.log"
eq "draining: the finished job's image 0 is served" \
    "$(curl -s -o "$TMP/drain.png" -w '%{http_code}' "$SRV_URL/v1/jobs/$job/images/0")" 200
sleep 0.5
check "image 1 is still unread: the drain goes on" kill -0 "$SRV_PID"
out=$(get "/v1/jobs/$job")
eq "draining: the finished job's status is served" "$(body_of "$out" | jq -r '.status + " " + (.result.data | length | tostring)')" "completed 2"
t0=$SECONDS
rc=0; wait "$SRV_PID" || rc=$?; SRV_PID=""
eq "drained daemon exits 0" "$rc" 0
check "it exits once the result was read (not at the 60 s drain timeout)" test $((SECONDS - t0)) -lt 5
check "drain logged" grep -q 'draining' "$TMP/drain.log"
check "no result lost" bash -c "! grep -q 'never read' '$TMP/drain.log'"
# exactly one answer per accepted request: every access-log line of a generation has one status
eq "one access-log line per sync generation" "$(jq -r 'select(.path == "/v1/images/generations") | .request_id' "$TMP/drain.access" | sort | uniq -d | wc -l)" 0

# ==== 3. drain timeout: what cannot finish is answered 503, then exit 0 ===================
srv_start cut --model rgb="$MODEL_RGB" --max-batch 1 --drain-timeout 0.5 || { fail start; finish; }
bg_gen "$TMP/c1.json" '{"seed": 1, "steps": 900}'
bg_gen "$TMP/c2.json" '{"seed": 2, "steps": 900}'
sleep 0.4
t0=$SECONDS
kill -TERM "$SRV_PID"
wait_all
eq "unfinished at the drain timeout: 503" "$(cat "$TMP/c1.json.code") $(cat "$TMP/c2.json.code")" "503 503"
eq "503 draining code" "$(jq -r .error.code "$TMP/c1.json")" draining
rc=0; wait "$SRV_PID" || rc=$?; SRV_PID=""
eq "exit 0 after the drain timeout" "$rc" 0
check "drain timeout respected" test $((SECONDS - t0)) -lt 10

# ==== 3b. a finished job nobody reads holds the drain only until the drain timeout ========
srv_start unread --model rgb="$MODEL_RGB" --drain-timeout 1.5 || { fail start; finish; }
job=$(post /v1/jobs '{"seed": 7, "steps": 3}' | sed '$d' | jq -r .id)
# polling reads the result, so wait on the event stream instead
timeout 20 curl -s -N "$SRV_URL/v1/jobs/$job/events" >"$TMP/unread.sse"
check "unread job completed" grep -q '^event: completed' "$TMP/unread.sse"
t0=$(date +%s%N)
kill -TERM "$SRV_PID"
rc=0; wait "$SRV_PID" || rc=$?; SRV_PID=""
waited_ms=$((($(date +%s%N) - t0) / 1000000))
eq "exit 0 with a result unread" "$rc" 0
check "it waited for a reader until the drain timeout (${waited_ms} ms)" \
    test "$waited_ms" -ge 1200 -a "$waited_ms" -lt 6000
check "the lost result is logged" grep -q '1 finished job never read' "$TMP/unread.log"

# ==== 3c. SIGTERM caught whichever thread it lands in =====================================
# A process-directed signal may be delivered to any thread, including those a library
# started before main (OpenBLAS's pool): aim one at a thread other than main (tgkill).
srv_start anythread --model rgb="$MODEL_RGB" || { fail start; finish; }
tid=""
for t in /proc/"$SRV_PID"/task/*; do
    t=${t##*/}
    [ "$t" != "$SRV_PID" ] && case $(cat /proc/"$SRV_PID"/task/"$t"/comm) in MHD-*) ;; *) tid=$t; break ;; esac
done
check "a non-main, non-HTTP thread exists (tid ${tid:-none}: $(cat /proc/"$SRV_PID"/task/"$tid"/comm 2>/dev/null))" test -n "$tid"
python3 -c 'import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True)
sys.exit(libc.tgkill(int(sys.argv[1]), int(sys.argv[2]), 15) != 0)' "$SRV_PID" "$tid"
rc=0; wait "$SRV_PID" || rc=$?; SRV_PID=""
eq "SIGTERM in thread $tid: drained, exit 0" "$rc" 0
check "it drained" grep -q 'draining' "$TMP/anythread.log"

# ==== 4. every accepted request gets exactly one terminal answer ==========================
srv_start count --model rgb="$MODEL_RGB" --max-batch 2 --max-queue 4 || { fail start; finish; }
for i in $(seq 1 16); do
    case $((i % 4)) in
    0) bg_gen "$TMP/n$i.json" "{\"seed\": $i, \"steps\": 3}" ;;
    1) bg_gen "$TMP/n$i.json" "{\"seed\": $i, \"steps\": 200, \"timeout_ms\": 400}" ;;
    2) bg_gen "$TMP/n$i.json" "{\"seed\": $i, \"steps\": 300}" --max-time 0.6 ;;
    3) bg_gen "$TMP/n$i.json" "{\"seed\": $i, \"steps\": 5, \"n\": 2}" ;;
    esac
done
wait_all
idle_and_empty() { [ "$(metric edm_images_in_flight)" -eq 0 ] && [ "$(metric edm_queue_depth)" -eq 0 ]; }
check "all work settles" wait_until 20 idle_and_empty
accepted=$(jq -r 'select(.path == "/v1/images/generations" and .job_id != null) | .job_id' "$TMP/count.access" | sort -u | wc -l)
terminal=0
for o in completed failed cancelled deadline_exceeded; do
    terminal=$((terminal + $(metric "edm_requests_total{mode=\"sync\",outcome=\"$o\"}")))
done
echo "accepted $accepted, terminal outcomes $terminal (completed $(metric 'edm_requests_total{mode="sync",outcome="completed"}'), deadline $(metric 'edm_requests_total{mode="sync",outcome="deadline_exceeded"}'), cancelled $(metric 'edm_requests_total{mode="sync",outcome="cancelled"}'), rejected 429: $(metric 'edm_rejections_total{reason="queue_full"}'))"
eq "terminal outcomes = accepted requests" "$terminal" "$accepted"
answered=$(grep -c . "$TMP/count.access")
eq "one access-log line per request" "$answered" "$(jq -r .request_id "$TMP/count.access" | sort -u | wc -l)"
check "stop exits 0" srv_stop
finish
