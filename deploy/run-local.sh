#!/usr/bin/env bash
# Serves one model on http://127.0.0.1:8080 with build/edmd (what `make run` runs; it builds
# nothing, make already did). The model: models/mnist-edm.safetensors when it exists, else
# the first argument, else $MODEL. Extra arguments after the model go to edmd.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
EDMD=$BUILD/edmd
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8080}
if [ ! -x "$EDMD" ]; then
    echo "run-local: $EDMD not found; run 'make' first" >&2
    exit 1
fi
model=""
if [ -f models/mnist-edm.safetensors ]; then
    model=models/mnist-edm.safetensors
fi
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
    model=$1
    shift
fi
model=${model:-${MODEL:-}}
if [ -z "$model" ]; then
    echo "run-local: no model: put one at models/mnist-edm.safetensors, or run" >&2
    echo "  make run MODEL=path/to/model.safetensors   (or deploy/run-local.sh PATH)" >&2
    exit 1
fi
cat <<MSG
edmd: serving $model on http://$HOST:$PORT   (Ctrl-C drains and stops)
try:
  curl -s http://$HOST:$PORT/v1/models
  curl -s -X POST http://$HOST:$PORT/v1/images/generations -H 'Content-Type: application/json' \\
       -H 'Accept: image/png' -d '{"seed": 42, "steps": 18}' -o image.png
  curl -s -X POST http://$HOST:$PORT/v1/jobs -H 'Content-Type: application/json' -d '{"n": 4}'
MSG
exec "$EDMD" --config config/edmd.conf --model "$model" --host "$HOST" --port "$PORT" "$@"
