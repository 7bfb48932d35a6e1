#!/usr/bin/env bash
# Lints Dockerfile and .dockerignore without a Docker engine (tests/deploy/check_dockerfile.py
# says what is proved), with dockerfile-utils when tests/deploy/tools can be installed.
# EDM_DEPLOY_BUILD=1 also runs the CPU build stage's make in a copy of its build context
# (about a minute on two cores).
set -u
. "$(dirname "$0")/lib.sh"
cd "$REPO"
deploy_npm_tools || echo "note: tests/deploy/tools not installed; the dockerfile-utils lint is skipped"
args=()
[ "${EDM_DEPLOY_BUILD:-0}" = 1 ] && args+=(--build)
exec python3 tests/deploy/check_dockerfile.py "${args[@]}"
