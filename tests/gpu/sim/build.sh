#!/usr/bin/env bash
# Builds the CUDA backend against the host CUDA emulator (cuda_sim.h) with `make sim` and runs
# the op tests on it:
#   tests/gpu/sim/build.sh [test_ops args]    -> build-sim/test_ops --backend cuda [args]
# For development on machines without a GPU: the .cu files compile with g++ -DEDM_CUDA_SIM, the
# rest of the engine as usual (without core/cuda/stub/), and test_ops runs every op of the CUDA
# code paths against the reference ops (and small networks against the CPU backend). Not part
# of `make test`: every simulated kernel runs one OS thread per CUDA thread, so the ops take a
# minute and the networks several; pick parts with e.g. --only conv2d,attention --precision fp16.
# SIM_BUILD=dir builds elsewhere; SIM_NO_RUN=1 only builds (build-sim/bench_gpu is built too).
set -euo pipefail
cd "$(dirname "$0")/../../.."
B=${SIM_BUILD:-build-sim}
make -s -j"${JOBS:-2}" SIM="$B" sim
echo "built $B/test_ops $B/bench_gpu"
if [ "${SIM_NO_RUN:-0}" != 1 ]; then exec "$B/test_ops" --backend cuda "$@"; fi
