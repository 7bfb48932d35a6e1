#!/usr/bin/env bash
# Replicas that die, stall or drain while they run jobs of the shared Redis queue:
#  - SIGKILL of a replica mid-job loses nothing: its jobs run again elsewhere once its lease
#    expires (--job-lease 2), with the same seeds, so with the same pixels as each seed run
#    alone; every job completes exactly once;
#  - a replica that is only slow (SIGSTOP past its lease, then SIGCONT) loses the job to
#    another and its late run is dropped: one result;
#  - SIGTERM with a short drain timeout hands the running job back to the queue, and another
#    replica finishes it.
# Prints the figures: jobs sent, replicas killed, jobs lost, duplicate completions, and the
# time from the kill to the last of the killed replica's jobs completing elsewhere.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/redis_lib.sh"
need_daemon
need_redis
J=(-H 'Content-Type: application/json')
names=(a b c)
STEPS=300
redis_start || { fail "redis-server starts"; finish; }
for r in a b c; do
    extra=()
    [ "$r" = c ] && extra=(--drain-timeout 1)
    # four images a batch: whatever a holds when it dies, the survivors have room to take it
    rep_start "$r" --max-batch 4 --max-steps 20000 "${extra[@]}" || { fail "replica $r starts"; finish; }
done

# references: each seed alone (n = 1, one request at a time per replica), synchronously
refs=()
for r in a b c; do
    for i in $(seq 0 5); do
        [ "${names[$((i % 3))]}" = "$r" ] || continue
        curl -s -o "$TMP/ref$i.png" -X POST "${REP_URL[$r]}/v1/images/generations" "${J[@]}" -H 'Accept: image/png' \
            -d "{\"seed\": $((300 + i)), \"steps\": $STEPS}"
    done &
    refs+=($!)
done
wait "${refs[@]}"
# largest_diffs A B [A B ...]: the largest pixel difference of each pair of PNGs, one per line
# (256 for a file that does not decode or a shape that differs)
largest_diffs() {
    python3 - "$@" <<'PY'
import sys
sys.path.insert(0, "tests/server")
import pngtool
a = sys.argv[1:]
for x, y in zip(a[::2], a[1::2]):
    try:
        p, q = pngtool.decode(open(x, "rb").read()), pngtool.decode(open(y, "rb").read())
        print(max(abs(u - v) for u, v in zip(p[3], q[3])) if p[:3] == q[:3] else 256)
    except (ValueError, OSError):
        print(256)
PY
}
same_image() { # JOB_ID REF: the job's image 0 against $TMP/refREF.png (largest difference <= 2)
    curl -s -o "$TMP/got.png" "${REP_URL[b]}/v1/jobs/$1/images/0"
    [ "$(largest_diffs "$TMP/got.png" "$TMP/ref$2.png")" -le 2 ]
}

echo "[${SECONDS}s] jobs"
# ---- SIGKILL mid-job --------------------------------------------------------------------------
# b and c paused while the jobs arrive, so that a surely takes some (its four slots); at most
# one each reaches them meanwhile (a blocking read they had asked for before the pause)
rep_kill b STOP
rep_kill c STOP
posts=()
for i in $(seq 0 5); do
    curl -s --max-time 10 -o "$TMP/job$i.json" -X POST "${REP_URL[a]}/v1/jobs" "${J[@]}" \
        -d "{\"seed\": $((300 + i)), \"steps\": $STEPS}" &
    posts+=($!)
done
wait "${posts[@]}"
ids=()
for i in $(seq 0 5); do ids+=("$(jq -r .id "$TMP/job$i.json")"); done
cons_a=$(consumer_of a)
busy=""
t0=$SECONDS
while [ $((SECONDS - t0)) -lt 20 ]; do # until a is in the middle of a job
    busy=$(jobs_now "${ids[@]}" | awk -v a="$cons_a" -v most=$((STEPS - 20)) '$2 == a && $3 > 0 && $3 < most { print $1; exit }')
    [ -n "$busy" ] && break
    sleep 0.01
done
rep_kill b CONT
rep_kill c CONT
steps_at_kill=$(job_field "${busy:-none}" step_done)
t_kill=$(date +%s%N)
rep_kill a KILL
# what a held unfinished when it died (its leases outlive it)
read -r -a victim_jobs <<<"$(jobs_now "${ids[@]}" | awk -v a="$cons_a" '$2 == a && $4 != "completed" { print $1 }' | tr '\n' ' ')"
check "replica a was killed in the middle of a job (step ${steps_at_kill:-?} of $STEPS; it held ${#victim_jobs[@]})" \
    test -n "$busy" -a "${#victim_jobs[@]}" -gt 0
declare -A done_at=() taken_at=()
for t in $(seq 1 1200); do # every job ends (at most 60 s)
    now=$(date +%s%N)
    while read -r id _ _ st attempt; do
        [ "$attempt" -gt 1 ] && [ -z "${taken_at[$id]:-}" ] && taken_at[$id]=$now
        case $st in completed | failed | cancelled) [ -n "${done_at[$id]:-}" ] || done_at[$id]=$now ;; esac
    done < <(jobs_now "${ids[@]}")
    [ "${#done_at[@]}" -eq "${#ids[@]}" ] && break
    sleep 0.05
done
lost=0 dups=0 wrong=0 identical=0 recover_ms=0 pairs=()
for i in "${!ids[@]}"; do
    id=${ids[$i]}
    [ "$(job_field "$id" state)" = completed ] || { lost=$((lost + 1)); echo "not completed: $id: $(job_field "$id" state)" >&2; continue; }
    c=$(job_field "$id" completions)
    [ "$c" -gt 1 ] && dups=$((dups + c - 1))
    curl -s -o "$TMP/got$i.png" "${REP_URL[c]}/v1/jobs/$id/images/0"
    pairs+=("$TMP/got$i.png" "$TMP/ref$i.png")
done
if [ "${#pairs[@]}" -gt 0 ]; then
    largest_diffs "${pairs[@]}" >"$TMP/diffs"
    wrong=$(awk '$1 > 2' "$TMP/diffs" | wc -l)
    identical=$(awk '$1 == 0' "$TMP/diffs" | wc -l)
fi
taken_ms=0
for id in "${victim_jobs[@]}"; do
    eq "a's job ${id:0:12}... ran again (attempt 2)" "$(job_field "$id" attempt)" 2
    ms=$(((${done_at[$id]:-$t_kill} - t_kill) / 1000000))
    [ "$ms" -gt "$recover_ms" ] && recover_ms=$ms
    ms=$(((${taken_at[$id]:-$t_kill} - t_kill) / 1000000))
    [ "$ms" -gt "$taken_ms" ] && taken_ms=$ms
done
echo "figures (SIGKILL mid-job): jobs sent ${#ids[@]}, replicas killed 1 (a, holding ${#victim_jobs[@]} unfinished job(s), one at step" \
    "${steps_at_kill:-?} of $STEPS), jobs lost $lost, duplicate completions $dups, images not the seed's $wrong" \
    "(pixel-identical to the seed run alone: $identical of $((${#ids[@]} - lost)))," \
    "time from the kill until another replica ran each of a's jobs ${taken_ms} ms (job-lease ${LEASE} s)," \
    "until the last of them completed there ${recover_ms} ms (a rerun from step 0 behind the survivors' own jobs)"
# the event stream of the job a was in the middle of, read on a survivor: the whole story,
# the rerun told once (without an id), every step told once
ev=$(timeout 20 curl -s -N "${REP_URL[b]}/v1/jobs/${busy:-none}/events")
eq "events of a's job: one rerun event" "$(grep -c '^event: rerun$' <<<"$ev")" 1
eq "... naming the second run" "$(grep -A1 '^event: rerun$' <<<"$ev" | sed -n 's/^data: //p' | jq -r .attempt)" 2
check "... with no id (Last-Event-ID keeps its place)" bash -c "! grep -B1 '^event: rerun$' <<<\"\$1\" | grep -q '^id:'" _ "$ev"
eq "... every step told once, then completed" "$(grep -c '^event: progress$' <<<"$ev") $(grep '^event:' <<<"$ev" | tail -n 1)" \
    "$STEPS event: completed"
eq "no job lost" "$lost" 0
eq "no duplicate completion" "$dups" 0
eq "every image is its seed's, run alone" "$wrong" 0
check "a's jobs were taken over within lease + 5 s of the kill" test "$taken_ms" -gt 0 -a "$taken_ms" -lt $((LEASE * 1000 + 5000))
SRV_URL=${REP_URL[b]}
taken=$(($(metric 'edm_job_store_jobs_taken_total{how="reclaimed"}') + $(SRV_URL=${REP_URL[c]} metric 'edm_job_store_jobs_taken_total{how="reclaimed"}')))
eq "the survivors reclaimed exactly a's jobs" "$taken" "${#victim_jobs[@]}"

echo "[${SECONDS}s] slow replica"
# ---- a replica that is only slow: its lease expires, another finishes, its late run is dropped
curl -s -o "$TMP/ref_slow.png" -X POST "${REP_URL[b]}/v1/images/generations" "${J[@]}" -H 'Accept: image/png' \
    -d "{\"seed\": 300, \"steps\": $((STEPS * 2))}"
out=$(curl -s -X POST "${REP_URL[b]}/v1/jobs" "${J[@]}" -d "{\"seed\": 300, \"steps\": $((STEPS * 2))}")
slow=$(jq -r .id <<<"$out")
r=""
for t in $(seq 1 400); do
    read -r _ holder k _ <<<"$(jobs_now "$slow")"
    [ "$holder" != - ] && [ "$k" -gt 0 ] && { r=$(replica_of_consumer "$holder"); break; }
    sleep 0.02
done
check "the job runs (${r:-nowhere})" test -n "$r"
if [ -n "$r" ]; then
    rep_kill "$r" STOP
    t0=$SECONDS
    took=""
    for t in $(seq 1 300); do
        [ "$(job_field "$slow" attempt)" = 2 ] && { took=$(owner_of "$slow"); break; }
        sleep 0.05
    done
    check "another replica took the job over while $r was stopped (${took:-no one}, $((SECONDS - t0)) s)" \
        test -n "$took" -a "$took" != "$r"
    for t in $(seq 1 600); do [ "$(job_field "$slow" state)" = completed ] && break; sleep 0.05; done
    rep_kill "$r" CONT
    sleep $((LEASE + 1)) # the stopped replica wakes, renews or finishes: refused
    eq "the job completed once" "$(job_field "$slow" state) $(job_field "$slow" completions)" "completed 1"
    check "its image is the seed's" same_image "$slow" _slow
    SRV_URL=${REP_URL[$r]}
    dropped=$(metric edm_job_store_runs_dropped_total) discarded=$(metric edm_job_store_outcomes_discarded_total)
    check "the slow replica dropped its late run ($dropped dropped, $discarded outcomes discarded)" \
        test $((dropped + discarded)) -ge 1
    echo "figures (slow replica): $r stopped past its lease; ${took:-no one} took the job over; after SIGCONT $r" \
        "dropped $dropped run(s) and had $discarded outcome(s) refused; completions of the job: $(job_field "$slow" completions)"
    eq "the slow replica is still ready" "$(curl -s -o /dev/null -w '%{http_code}' "${REP_URL[$r]}/readyz")" 200
fi

echo "[${SECONDS}s] drain"
# ---- drain: the job running on c at the drain timeout goes back to the queue -----------------
# two long jobs of four images fill b and c (max-batch 4), one each
long=()
for r in b c; do
    out=$(curl -s -X POST "${REP_URL[$r]}/v1/jobs" "${J[@]}" -d '{"seed": 400, "n": 4, "steps": 8000}')
    long+=("$(jq -r .id <<<"$out")")
done
on_c="" on_b=""
for t in $(seq 1 200); do
    for id in "${long[@]}"; do
        case $(runner_of "$id") in c) on_c=$id ;; b) on_b=$id ;; esac
    done
    [ -n "$on_c" ] && [ -n "$on_b" ] && break
    sleep 0.05
done
if [ -n "$on_c" ] && [ -n "$on_b" ]; then
    t0=$(date +%s%N)
    check "c drains (drain timeout 1 s) and exits 0" rep_stop c
    drain_ms=$((($(date +%s%N) - t0) / 1000000))
    check "c exited within its drain timeout and the flush (${drain_ms} ms)" test "$drain_ms" -lt 8000
    echo "figures (drain): c (drain timeout 1 s) exited 0 in ${drain_ms} ms, handing back its running job"
    check "c said it handed its job back" grep -q "of the shared queue still running at the drain timeout; handing it back" "$TMP/c.log"
    eq "the handed-back job waits in the queue" "$(job_field "$on_c" state) $(rcli get "edm:job:$on_c:lease")" "queued "
    curl -s -o /dev/null -X DELETE "${REP_URL[b]}/v1/jobs/$on_b" # b has room again
    for t in $(seq 1 100); do [ "$(job_field "$on_c" attempt)" = 2 ] && break; sleep 0.05; done
    eq "b runs the handed-back job (attempt 2)" "$(job_field "$on_c" attempt) $(runner_of "$on_c")" "2 b"
    curl -s -o /dev/null -X DELETE "${REP_URL[b]}/v1/jobs/$on_c"
else
    fail "drain hand-back: the long jobs did not go one to b and one to c (${on_b:-none}, ${on_c:-none})"
fi

check "replica b drains and exits 0" rep_stop b
echo "[${SECONDS}s] done"
finish
