#!/usr/bin/env bash
# make bench: the engine benchmark on the CIFAR-10 DDPM++ network (random weights), batch 1
# and 16, on the CPU, printed next to the machine's SGEMM rate; then any op-level benches.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
"$BUILD/bench/bench_engine" --preset cifar10-ddpmpp --batch 1,16 --seconds 5 "$@"
