#!/usr/bin/env bash
# Builds the CUDA backend against the host CUDA emulator (cuda_sim.h) and runs the op tests on it:
#   tests/gpu/sim/build.sh [test_ops args]  -> build-sim/test_ops --backend cuda [args]
# For development on machines without a GPU: the .cu files compile with g++ -DEDM_CUDA_SIM,
# the rest of the engine as usual (without core/cuda/stub/), and test_ops runs every op of
# the CUDA code paths against the reference ops. Not part of `make test` (slow: every simulated
# kernel runs one thread per CUDA thread; pick parts with e.g. --only conv2d --precision fp16).
set -euo pipefail
cd "$(dirname "$0")/../../.."
B=${SIM_BUILD:-build-sim}
mkdir -p "$B/obj"
CFLAGS="-std=c11 -O1 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror \
 -D_GNU_SOURCE -fopenmp -Iinclude -Icore -I/usr/include/x86_64-linux-gnu/openblas-pthread"
CXXFLAGS="-x c++ -std=c++20 -O1 -g -Wall -Wextra -Werror -DEDM_CUDA_SIM -Itests/gpu/sim -Iinclude -Icore"
objs=()
for f in core/*.c core/*/*.c; do
    o="$B/obj/$(echo "${f%.c}" | tr / _).o"
    if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ core/ops.h -nt "$o" ]; then gcc $CFLAGS -c "$f" -o "$o"; fi
    objs+=("$o")
done
for f in core/cuda/*.cu; do
    o="$B/obj/$(basename "${f%.cu}").cu.o"
    if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ core/cuda/cuda_internal.h -nt "$o" ] ||
       [ core/ops.h -nt "$o" ] || [ include/edm.h -nt "$o" ] || [ tests/gpu/sim/cuda_sim.h -nt "$o" ]; then
        g++ $CXXFLAGS -c "$f" -o "$o" &
    fi
    objs+=("$o")
done
wait
gcc $CFLAGS -Itests/unit -c tests/unit/test_ops.c -o "$B/obj/test_ops.o"
gcc $CFLAGS -Itests/unit -c tests/unit/op_reference.c -o "$B/obj/op_reference.o"
g++ -fopenmp "$B/obj/test_ops.o" "$B/obj/op_reference.o" "${objs[@]}" -lopenblas -ljansson -lpng \
    -lz -lm -lpthread -o "$B/test_ops"
echo "built $B/test_ops"
if [ "${SIM_BENCH:-0}" = 1 ]; then
    gcc $CFLAGS -c bench/bench_gpu.c -o "$B/obj/bench_gpu.o"
    g++ -fopenmp "$B/obj/bench_gpu.o" "${objs[@]}" -lopenblas -ljansson -lpng -lz -lm -lpthread \
        -o "$B/bench_gpu"
    echo "built $B/bench_gpu"
fi
if [ "${SIM_NO_RUN:-0}" != 1 ]; then "$B/test_ops" --backend cuda "$@"; fi
