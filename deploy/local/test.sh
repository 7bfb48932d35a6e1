#!/usr/bin/env bash
# The load-balanced setup under disruption (run by make test through
# tests/deploy/test_local_lb.sh): nginx in front of three edmd replicas on loopback, steady
# load, one replica drained with SIGTERM and restarted, another killed with SIGKILL and
# restarted, async jobs read back through the balancer. deploy/local/loadtest.py says what
# is checked; it prints the figures and "N passed, N failed, N skipped".
#
# With EDM_LB_STORE=redis (tests/deploy/test_local_lb_redis.sh) the replicas share a Redis
# job store (redis-server in the run folder, --job-lease 2): a stream of async jobs runs
# through the drain and the kill -9, and none may be lost or complete twice.
#
# Environment: BUILD (edmd = $BUILD/edmd), EDM_LB_MODEL (default: the smallest test model
# under tests/vectors/, else models/mnist-edm.safetensors), EDM_LB_DURATION (seconds of
# load, default 36; 24 with redis), EDM_LB_STEPS (sampler steps, default 18),
# EDM_LB_STORE (memory or redis, default memory).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
skip() { echo "SKIP local balancer test: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }

command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || skip "nginx not installed (Debian: nginx)"
command -v curl >/dev/null 2>&1 || skip "curl not installed"
[ -x "$BUILD/edmd" ] || skip "$BUILD/edmd not built"
store=${EDM_LB_STORE:-memory}
if [ "$store" = redis ]; then
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ||
        skip "redis-server not installed (Debian: redis-server)"
fi
model=${EDM_LB_MODEL:-}
if [ -z "$model" ]; then
    for m in tests/vectors/edm_songunet_gray8/model.safetensors tests/vectors/vp_songunet_1level_gray/model.safetensors \
             $(ls -S -r tests/vectors/*/model.safetensors 2>/dev/null) models/mnist-edm.safetensors; do
        if [ -f "$m" ]; then model=$m; break; fi
    done
fi
[ -n "$model" ] && [ -f "$model" ] || skip "no model (tests/vectors/*/model.safetensors, models/, or EDM_LB_MODEL)"

export EDM_LB_DIR; EDM_LB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/edm-lb.XXXXXX")
export EDM_LB_MODEL=$model EDM_LB_PORT=0 EDM_LB_REPLICAS=3 EDMD=$BUILD/edmd EDM_LB_STORE=$store
export EDM_LB_ARGS="--compute-threads 1 --max-batch 8 --drain-timeout 20"
timeline=(--duration "${EDM_LB_DURATION:-36}" --t-drain 8 --t-kill 18 --restart-after 2)
if [ "$store" = redis ]; then
    EDM_LB_ARGS+=" --job-lease 2"
    timeline=(--duration "${EDM_LB_DURATION:-24}" --t-drain 6 --t-kill 12 --restart-after 2 --lease 2)
fi
cleanup() {
    deploy/local/lb.sh down >/dev/null 2>&1
    if [ "${rc:-1}" -ne 0 ]; then
        for f in "$EDM_LB_DIR"/r*.log "$EDM_LB_DIR"/nginx-error.log; do
            [ -f "$f" ] && { echo "--- $f"; tail -n 8 "$f"; }
        done
    fi
    rm -rf "$EDM_LB_DIR"
}
trap cleanup EXIT
echo "model: $model"
if ! deploy/local/lb.sh up; then
    rc=1
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
deploy/local/lb.sh status
timeout 240 python3 deploy/local/loadtest.py --lb deploy/local/lb.sh --steps "${EDM_LB_STEPS:-18}" "${timeline[@]}"
rc=$?
exit $rc
