# redis_lib.sh - a real Redis and several edmd replicas sharing it, for the job-store tests
# (sourced after lib.sh, not run).
#
# Redis is Debian's redis-server on a free loopback port, with its files in $TMP (AOF on,
# fsync on every write, so a SIGKILL loses nothing it acknowledged). Replicas are edmd
# processes with --job-store pointing at it, each with its own log and port.
#
#   need_redis                      skip the whole script (with the reason) without redis-server
#   redis_start / redis_kill        start (waits for PING) / SIGKILL Redis; REDIS_PORT stays
#   rcli ARGS...                    redis-cli against it
#   rep_start NAME [options]        start a replica (waits for /readyz); REP_URL[NAME], REP_PID[NAME]
#   rep_stop NAME                   SIGTERM and wait; returns its exit status
#   rep_kill NAME [SIGNAL]          a signal (default KILL; STOP and CONT pause and resume it)
#   consumer_of NAME                the replica's consumer name in the queue's group
#   runner_of JOB_ID                the replica that holds the job's lease now ("" if none)
#   owner_of JOB_ID                 the replica that acquired the job last
#   job_field JOB_ID FIELD          a field of the job's record in Redis
#   jobs_now JOB_ID...              "ID LEASE_HOLDER STEP_DONE STATE ATTEMPT" per job, in one call
#   await_status URL ID STATUS SECS waits until GET says STATUS; 0 when it did
: "${LEASE:=2}"
declare -A REP_URL REP_PID
REDIS_PID=""
REDIS_PORT=""

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

need_redis() {
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        skip "redis-server or redis-cli not installed (Debian: redis-server, which brings redis-tools)"
        finish
    fi
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

redis_start() {
    REDIS_PORT=${REDIS_PORT:-$(free_port)}
    mkdir -p "$TMP/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP/redis" --appendonly yes \
        --appendfsync always --save '' --daemonize no --logfile "$TMP/redis.log" >/dev/null 2>&1 &
    REDIS_PID=$!
    local i
    for i in $(seq 1 200); do
        [ "$(rcli ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.05
    done
    echo "redis-server did not start:" >&2
    tail -n 5 "$TMP/redis.log" >&2
    return 1
}

redis_kill() {
    [ -n "$REDIS_PID" ] || return 0
    kill -KILL "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=""
}

rep_start() {
    local name=$1; shift
    rm -f "$TMP/$name.port"
    "$EDMD" --host 127.0.0.1 --port 0 --port-file "$TMP/$name.port" --access-log "$TMP/$name.access" \
        --backend "${EDMD_TEST_BACKEND:-cpu}" --compute-threads "${EDMD_TEST_THREADS:-1}" --model "$MODEL_FAST" \
        --job-store "redis://127.0.0.1:$REDIS_PORT" --job-lease "$LEASE" "$@" >"$TMP/$name.log" 2>&1 &
    REP_PID[$name]=$!
    local i
    for i in $(seq 1 300); do
        if [ -s "$TMP/$name.port" ]; then
            REP_URL[$name]="http://127.0.0.1:$(cat "$TMP/$name.port")"
            curl -fs -o /dev/null "${REP_URL[$name]}/readyz" && return 0
        fi
        kill -0 "${REP_PID[$name]}" 2>/dev/null || break
        sleep 0.05
    done
    echo "replica $name did not become ready:" >&2
    tail -n 5 "$TMP/$name.log" >&2
    return 1
}

rep_stop() {
    local pid=${REP_PID[$1]:-} rc=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" || rc=$?
    REP_PID[$1]=""
    return $rc
}

rep_kill() {
    local pid=${REP_PID[$1]:-} sig=${2:-KILL}
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null
    if [ "$sig" = KILL ]; then
        wait "$pid" 2>/dev/null
        REP_PID[$1]=""
    fi
}

consumer_of() { sed -n 's/.*(consumer \(.*\))$/\1/p' "$TMP/$1.log" | tail -n 1; }

replica_of_consumer() {
    local name
    [ -n "$1" ] || return 0
    for name in "${!REP_URL[@]}"; do
        [ "$(consumer_of "$name")" = "$1" ] && { echo "$name"; return 0; }
    done
}
runner_of() { replica_of_consumer "$(rcli get "edm:job:$1:lease" | cut -d' ' -f1)"; }
owner_of() { replica_of_consumer "$(rcli hget "edm:job:$1" owner)"; }

job_field() { rcli hget "edm:job:$1" "$2"; }

# jobs_now ID...: one line per job, "ID LEASE_CONSUMER|- STEP_DONE STATE ATTEMPT", in one round trip
jobs_now() {
    rcli --no-raw eval "local out = {} for i, id in ipairs(ARGV) do
        local l = redis.call('GET', 'edm:job:' .. id .. ':lease') or '-'
        local h = redis.call('HMGET', 'edm:job:' .. id, 'step_done', 'state', 'attempt')
        out[i] = id .. ' ' .. string.match(l, '^(%S+)') .. ' ' .. (h[1] or 0) .. ' ' .. (h[2] or 'gone') ..
                 ' ' .. (h[3] or 0) end
        return out" 0 "$@" | sed -e 's/^ *[0-9]*) //' -e 's/"//g'
}

await_status() {
    local url=$1 id=$2 want=$3 secs=$4 t0=$SECONDS st
    while [ $((SECONDS - t0)) -lt "$secs" ]; do
        st=$(curl -s --max-time 5 "$url/v1/jobs/$id" | jq -r .status 2>/dev/null)
        [ "$st" = "$want" ] && return 0
        case $st in completed | failed | cancelled) return 1 ;; esac
        sleep 0.1
    done
    return 1
}

redis_cleanup() {
    local name
    for name in "${!REP_PID[@]}"; do
        [ -n "${REP_PID[$name]}" ] || continue
        kill -CONT "${REP_PID[$name]}" 2>/dev/null
        kill -KILL "${REP_PID[$name]}" 2>/dev/null
        wait "${REP_PID[$name]}" 2>/dev/null
    done
    redis_kill
    cleanup
}
trap redis_cleanup EXIT
