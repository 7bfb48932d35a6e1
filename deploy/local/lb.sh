#!/usr/bin/env bash
# A local load-balanced edm-serve: nginx in front of several edmd replicas, all on loopback.
#
#   deploy/local/lb.sh up            start the replicas and nginx, wait until all are ready
#   deploy/local/lb.sh down          drain everything (SIGTERM), wait, clean up
#   deploy/local/lb.sh drain N       SIGTERM replica N (1-based) and wait until it exits
#   deploy/local/lb.sh kill N        SIGKILL replica N (a crash)
#   deploy/local/lb.sh start N       (re)start replica N on its port and wait until ready
#   deploy/local/lb.sh status        one line per process
#   deploy/local/lb.sh url           the balancer's URL
#   deploy/local/lb.sh dir           the run folder
#   deploy/local/lb.sh redis-port    the port of the run's Redis (EDM_LB_STORE=redis)
#
# Environment (read by `up`, remembered in the run folder for the other commands):
#   EDM_LB_DIR       run folder: ports, pids, logs, nginx.conf    [${TMPDIR:-/tmp}/edm-lb]
#   EDM_LB_REPLICAS  number of edmd replicas                      [3]
#   EDM_LB_PORT      balancer port (0: a free one)                [8090]
#   EDM_LB_MODEL     model file                                   [models/mnist-edm.safetensors]
#   EDMD             the daemon                                   [$BUILD/edmd, BUILD=build]
#   EDM_LB_ARGS      extra edmd flags for every replica           [--compute-threads 1]
#   NGINX            nginx binary                                 [nginx, /usr/sbin/nginx]
#   EDM_LB_STORE     memory: each replica keeps its async jobs;   [memory]
#                    redis: a Redis (redis-server, AOF on) in the run folder is the
#                    replicas' shared job queue and result store (--job-store)
#
# nginx.conf (written by `up` from deploy/local/nginx.conf.in) explains the routing: where
# a retry is safe, and how a job created on one replica is found through the balancer
# (memory), or why any replica can answer for it (redis).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DIR=${EDM_LB_DIR:-${TMPDIR:-/tmp}/edm-lb}

die() { echo "lb.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# waits until $1 answers 200 (at most $2 seconds)
wait_ok() {
    local url=$1 limit=$2 t0=$SECONDS
    while [ $((SECONDS - t0)) -lt "$limit" ]; do
        if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

load_state() {
    [ -f "$DIR/state" ] || die "not running (no $DIR/state); run: $0 up"
    # shellcheck disable=SC1091
    . "$DIR/state"
}

replica_port() { eval "echo \${PORT_$1}"; }

start_replica() {
    local n=$1 port; port=$(replica_port "$n")
    [ -n "$port" ] || die "no replica $n"
    if pid_alive "$(cat "$DIR/r$n.pid" 2>/dev/null)"; then die "replica $n is running"; fi
    rm -f "$DIR/r$n.pid" "$DIR/r$n.rc"
    local store=""
    [ "$STORE" = redis ] && store="--job-store redis://127.0.0.1:$REDIS_PORT"
    # a small keeper shell records edmd's exit status in rN.rc; signals go to edmd's own pid.
    # Every client reaches a replica through nginx, from 127.0.0.1: a per-address limit
    # would cap the balancer itself, so it is off (nginx is the place to limit clients).
    # shellcheck disable=SC2086
    (
        "$EDMD" --host 127.0.0.1 --port "$port" --model "$MODEL" --access-log "$DIR/r$n.access.log" \
            --per-ip-connection-limit 0 $ARGS $store >>"$DIR/r$n.log" 2>&1 </dev/null &
        echo $! >"$DIR/r$n.pid.tmp" && mv "$DIR/r$n.pid.tmp" "$DIR/r$n.pid"
        wait $!
        echo $? >"$DIR/r$n.rc"
    ) >/dev/null 2>&1 &
    while [ ! -f "$DIR/r$n.pid" ]; do sleep 0.01; done
    if ! wait_ok "http://127.0.0.1:$port/readyz" 60; then
        tail -n 5 "$DIR/r$n.log" >&2
        die "replica $n (port $port) did not become ready"
    fi
}

# Redis for EDM_LB_STORE=redis: durable (AOF, fsync on every write), loopback only.
start_redis() {
    command -v redis-server >/dev/null 2>&1 || die "redis-server not found (Debian: apt-get install redis-server)"
    mkdir -p "$DIR/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DIR/redis" --appendonly yes --appendfsync always \
        --save '' --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" >/dev/null ||
        die "redis-server did not start (see $DIR/redis.log)"
    local i
    for i in $(seq 1 100); do
        [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.05
    done
    die "redis-server does not answer on port $REDIS_PORT"
}

cmd_up() {
    [ -f "$DIR/state" ] && pid_alive "$(cat "$DIR/nginx.pid" 2>/dev/null)" && die "already up ($DIR)"
    local nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
    [ -x "$nginx" ] || die "nginx not found (Debian: apt-get install nginx)"
    local edmd=${EDMD:-$REPO/${BUILD:-build}/edmd}
    [ -x "$edmd" ] || die "$edmd not built (make)"
    local model=${EDM_LB_MODEL:-$REPO/models/mnist-edm.safetensors}
    [ -f "$model" ] || die "model $model not found (EDM_LB_MODEL)"
    local n=${EDM_LB_REPLICAS:-3} lbport=${EDM_LB_PORT:-8090} store=${EDM_LB_STORE:-memory}
    case $store in memory | redis) ;; *) die "EDM_LB_STORE: memory or redis, not '$store'" ;; esac
    [ "$lbport" = 0 ] && lbport=$(free_port)
    mkdir -p "$DIR/tmp"
    chmod 755 "$DIR" "$DIR/tmp"
    {
        echo "EDMD=$(printf %q "$edmd")"
        echo "MODEL=$(printf %q "$(cd "$(dirname "$model")" && pwd)/$(basename "$model")")"
        echo "ARGS=$(printf %q "${EDM_LB_ARGS:---compute-threads 1}")"
        echo "NGINX_BIN=$(printf %q "$nginx")"
        echo "REPLICAS=$n"
        echo "LB_PORT=$lbport"
        echo "STORE=$store"
        echo "REDIS_PORT=$([ "$store" = redis ] && free_port)"
        for i in $(seq 1 "$n"); do echo "PORT_$i=$(free_port)"; done
    } >"$DIR/state"
    load_state
    local servers="" jservers=""
    for i in $(seq 1 "$n"); do
        servers+="        server 127.0.0.1:$(replica_port "$i") max_fails=1 fail_timeout=1s;  # r$i"$'\n'
        jservers+="        server 127.0.0.1:$(replica_port "$i") max_fails=0;  # r$i"$'\n'
    done
    local user=""
    [ "$(id -u)" = 0 ] && user="user nobody nogroup;"
    # the template's "# @memory ... # @end" and "# @redis ... # @end" blocks: the store's stays
    SERVERS=$servers JSERVERS=$jservers LBPORT=$LB_PORT RUNDIR=$DIR USERLINE=$user STORE=$STORE \
        python3 - "$HERE/nginx.conf.in" "$DIR/nginx.conf" <<'EOF'
import os, re, sys
s = open(sys.argv[1]).read()
for k in ("SERVERS", "JSERVERS", "LBPORT", "RUNDIR", "USERLINE"):
    s = s.replace("@" + k + "@", os.environ[k].rstrip("\n"))
keep = os.environ["STORE"]
s = re.sub(r"(?ms)^[ \t]*# @(memory|redis)\n(.*?)^[ \t]*# @end\n",
           lambda m: m.group(2) if m.group(1) == keep else "", s)
open(sys.argv[2], "w").write(s)
EOF
    trap 'cmd_down >/dev/null 2>&1' EXIT  # a failed start leaves nothing running
    "$NGINX_BIN" -t -q -p "$DIR" -c "$DIR/nginx.conf" || die "nginx -t failed"
    [ "$STORE" = redis ] && start_redis
    for i in $(seq 1 "$n"); do start_replica "$i"; done
    "$NGINX_BIN" -p "$DIR" -c "$DIR/nginx.conf"
    wait_ok "http://127.0.0.1:$LB_PORT/readyz" 10 || die "the balancer does not answer"
    trap - EXIT
    echo "up: http://127.0.0.1:$LB_PORT -> $n replicas, job store $STORE$([ "$STORE" = redis ] && echo " (redis 127.0.0.1:$REDIS_PORT)") (run folder $DIR)"
}

cmd_drain() {
    load_state
    local n=$1 pid; pid=$(cat "$DIR/r$n.pid" 2>/dev/null || true)
    pid_alive "$pid" || die "replica $n is not running"
    local t0; t0=$(date +%s.%N)
    kill -TERM "$pid"
    while pid_alive "$pid"; do sleep 0.05; done
    local t=0 rc
    while [ ! -f "$DIR/r$n.rc" ] && [ $t -lt 100 ]; do sleep 0.02; t=$((t + 1)); done
    rc=$(cat "$DIR/r$n.rc" 2>/dev/null || echo unknown)
    echo "drained r$n in $(python3 -c "import time; print(f'{time.time() - $t0:.2f}')") s, exit $rc"
    [ "$rc" = 0 ]
}

cmd_kill() {
    load_state
    local n=$1 pid; pid=$(cat "$DIR/r$n.pid" 2>/dev/null || true)
    pid_alive "$pid" || die "replica $n is not running"
    kill -KILL "$pid"
    while pid_alive "$pid"; do sleep 0.02; done
    echo "killed r$n"
}

cmd_start() {
    load_state
    start_replica "$1"
    echo "started r$1 on port $(replica_port "$1")"
}

cmd_status() {
    load_state
    local pid
    pid=$(cat "$DIR/nginx.pid" 2>/dev/null || true)
    echo "nginx  http://127.0.0.1:$LB_PORT  $(pid_alive "$pid" && echo "pid $pid" || echo down)"
    for i in $(seq 1 "$REPLICAS"); do
        pid=$(cat "$DIR/r$i.pid" 2>/dev/null || true)
        echo "r$i     http://127.0.0.1:$(replica_port "$i")  $(pid_alive "$pid" && echo "pid $pid" || echo down)"
    done
    if [ "$STORE" = redis ]; then
        pid=$(cat "$DIR/redis.pid" 2>/dev/null || true)
        echo "redis  127.0.0.1:$REDIS_PORT  $(pid_alive "$pid" && echo "pid $pid" || echo down)"
    fi
}

cmd_down() {
    [ -f "$DIR/state" ] || return 0
    load_state
    local pid
    pid=$(cat "$DIR/nginx.pid" 2>/dev/null || true)
    if pid_alive "$pid"; then "$NGINX_BIN" -p "$DIR" -c "$DIR/nginx.conf" -s quit 2>/dev/null || kill -TERM "$pid"; fi
    for i in $(seq 1 "$REPLICAS"); do
        pid=$(cat "$DIR/r$i.pid" 2>/dev/null || true)
        pid_alive "$pid" && kill -TERM "$pid"
    done
    local t0=$SECONDS
    for f in "$DIR"/r[0-9]*.pid "$DIR/nginx.pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        while pid_alive "$pid" && [ $((SECONDS - t0)) -lt 40 ]; do sleep 0.05; done
        pid_alive "$pid" && kill -KILL "$pid"
    done
    pid=$(cat "$DIR/redis.pid" 2>/dev/null || true) # after the replicas: their outcomes are written
    if pid_alive "$pid"; then
        kill -TERM "$pid"
        t0=$SECONDS
        while pid_alive "$pid" && [ $((SECONDS - t0)) -lt 10 ]; do sleep 0.05; done
        pid_alive "$pid" && kill -KILL "$pid"
    fi
    rm -f "$DIR/state" "$DIR"/*.pid
    echo "down"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
drain | kill | start) [ -n "${2:-}" ] || die "usage: $0 $1 N"; "cmd_$1" "$2" ;;
status) cmd_status ;;
url) load_state; echo "http://127.0.0.1:$LB_PORT" ;;
redis-port) load_state; [ "$STORE" = redis ] || die "the job store is $STORE"; echo "$REDIS_PORT" ;;
dir) echo "$DIR" ;;
*) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
