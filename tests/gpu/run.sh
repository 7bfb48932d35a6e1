#!/usr/bin/env bash
# tests/gpu/run.sh - everything a session with a GPU checks, in one script (about 4 minutes):
#   1. environment (GPU, driver, nvcc) and build prerequisites (headers, libraries);
#   2. make CUDA=1 (all; if the daemon's dependencies are missing, the library, tests and
#      benchmarks alone);
#   3. test_ops --backend cuda: every op on the CUDA backend against the reference ops in
#      fp32/tf32/fp16/bf16, convolutions through cuDNN, graphs, small networks vs the CPU;
#   3b. test_conformance with EDM_TEST_BACKEND=cuda: the official vectors on the GPU (fp32),
#      with CUDA graphs off and on;
#   4. the unit and conformance programs (build/tests/*/test_*) as CI runs them (CPU);
#   5. bench_gpu: CIFAR-10 DDPM++ speed per precision and batch, error vs fp32, latency;
#   6. if time is left: test_ops --backend cuda under compute-sanitizer (memcheck).
# Usage (from anywhere; runs in the repository root):
#   OUT=/writable/dir [DEBS=dir-of-.deb-files] [BUILD=build] tests/gpu/run.sh
# DEBS: .deb packages to unpack (dpkg -x) into a local prefix when the machine lacks headers
# or libraries (libjansson-dev, libpng-dev, libopenblas-dev, libmicrohttpd-dev, ...).
# Logs land in $OUT (env.txt, build.log, cuda_ops.log, conformance_cuda.log, suite.log,
# bench.log, sanitizer.log: at most 8 files with the summary)
# and a summary in $OUT/summary.txt (also printed at the end). Exit status 0 when every stage
# that ran passed.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
BUILD=${BUILD:-build}
mkdir -p "$OUT"
S=$OUT/summary.txt
: >"$S"
T0=$SECONDS
status=0
say() { echo "$*" | tee -a "$S"; }
elapsed() { echo $((SECONDS - T0)); }
stage_result() { # name rc log
    local name=$1 rc=$2 log=$3 line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" 2>/dev/null | tail -n 1)
    if [ "$rc" -eq 0 ]; then say "[ok]   $name (${line:-exit 0}) at $(elapsed)s"
    else
        status=1
        if [ "$rc" -eq 124 ]; then say "[FAIL] $name: TIMED OUT at $(elapsed)s (${line:-no summary line})"
        else say "[FAIL] $name: exit $rc at $(elapsed)s (${line:-no summary line})"; fi
    fi
}

# ---- 1. environment -------------------------------------------------------------------------
export PATH=$PATH:/usr/local/cuda/bin
{
    echo "date: $(date -u)"; uname -a; echo "cores: $(nproc)"
    nvidia-smi 2>&1; nvcc --version 2>&1; cc --version 2>&1 | head -n 1
} >"$OUT/env.txt" 2>&1
say "== edm-serve GPU run, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+local changes)')"
say "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1 | head -n 1)"
say "nvcc: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo 'NOT FOUND')"

# cuDNN (optional, loaded at run time by core/cuda/cuda_cudnn.cu): the system's, or PyTorch's copy.
if [ -z "${EDM_CUDNN_PATH:-}" ] && ! ldconfig -p 2>/dev/null | grep -q 'libcudnn.so.9' &&
    [ ! -e /usr/local/cuda/lib64/libcudnn.so.9 ]; then
    p=$(find /opt /usr/local /usr/lib -name 'libcudnn.so.9' 2>/dev/null | head -n 1)
    [ -n "$p" ] && export EDM_CUDNN_PATH=$p
fi
say "cudnn: ${EDM_CUDNN_PATH:-$(ldconfig -p 2>/dev/null | grep -o '/[^ ]*libcudnn.so.9' | head -n 1)}${EDM_CUDNN_PATH:+ (EDM_CUDNN_PATH)}"

if [ -n "${DEBS:-}" ]; then
    P=$ROOT/.debroot
    mkdir -p "$P"
    n=0
    for d in "$DEBS"/*.deb; do
        [ -f "$d" ] || continue
        dpkg -x "$d" "$P" && n=$((n + 1))
    done
    A=x86_64-linux-gnu
    inc="$P/usr/include:$P/usr/include/$A:$P/usr/include/$A/openblas-pthread"
    lib="$P/usr/lib/$A:$P/usr/lib/$A/openblas-pthread:$P/usr/lib"
    export CPATH=$inc${CPATH:+:$CPATH}
    export LIBRARY_PATH=$lib${LIBRARY_PATH:+:$LIBRARY_PATH}
    export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    say "debs: unpacked $n package(s) from $DEBS into $P"
fi

have_header() { # name: found in the system include dirs or CPATH
    local h=$1 d
    for d in /usr/include /usr/include/x86_64-linux-gnu /usr/include/x86_64-linux-gnu/openblas-pthread \
        /usr/local/include ${CPATH//:/ }; do
        [ -f "$d/$h" ] && return 0
    done
    return 1
}
have_lib() { # soname stem, e.g. jansson: the linker finds lib<stem>.so
    echo 'int main(void){return 0;}' | cc -x c - -o /tmp/edm_libcheck -l"$1" >/dev/null 2>&1
}
missing=""
for h in cblas.h jansson.h png.h microhttpd.h; do have_header "$h" || missing="$missing $h"; done
for l in openblas jansson png microhttpd; do have_lib "$l" || missing="$missing lib$l.so"; done
if [ -n "$missing" ]; then
    say "MISSING:$missing"
    say "  (rerun with DEBS=<dir> holding e.g. libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread"
    say "   libgfortran5 libjansson-dev libjansson4 libpng-dev libpng16-16 libmicrohttpd-dev libmicrohttpd12"
    say "   zlib1g-dev, from Debian bookworm amd64)"
fi

# ---- 2. build -----------------------------------------------------------------------------
JOBS=$(nproc 2>/dev/null || echo 16)
timeout 420 make BUILD="$BUILD" CUDA=1 -j"$JOBS" >"$OUT/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
    # The daemon (libmicrohttpd) is not needed here: build the library, tests and benches alone.
    targets="$BUILD/libedm.a"
    for t in tests/*/test_*.c; do
        [ "$t" = tests/unit/test_server.c ] && continue # links the daemon
        t=${t#tests/}; targets="$targets $BUILD/tests/${t%.c}"
    done
    for t in bench/*.c; do targets="$targets $BUILD/bench/$(basename "${t%.c}")"; done
    echo "== retry without the daemon: $targets" >>"$OUT/build.log"
    timeout 300 make BUILD="$BUILD" CUDA=1 -k -j"$JOBS" $targets >>"$OUT/build.log" 2>&1
    rc=$?
fi
stage_result "build (make CUDA=1)" $rc "$OUT/build.log"
if [ $rc -ne 0 ]; then
    grep -E 'error|Error|warning' "$OUT/build.log" | head -n 20 | sed 's/^/    /' | tee -a "$S"
fi
grep -q 'CUDA backend: on' "$OUT/build.log" || grep -q 'backend_cuda' "$OUT/build.log" ||
    say "  warning: the build log does not show the CUDA backend being compiled"

# ---- 3. CUDA ops against the reference ------------------------------------------------------
OPS=$BUILD/tests/unit/test_ops
if [ -x "$OPS" ]; then
    timeout 240 "$OPS" --backend cuda >"$OUT/cuda_ops.log" 2>&1
    rc=$?
    stage_result "test_ops --backend cuda" $rc "$OUT/cuda_ops.log"
    grep -E '^(FAIL|SKIP)|^== cuda' "$OUT/cuda_ops.log" | head -n 25 | sed 's/^/    /' | tee -a "$S"
    # The largest error seen per precision, against its tolerance (table in test_ops.c).
    for p in fp32 tf32 fp16 bf16; do
        worst=$(awk -v p="cuda/$p" 'index($1, p) == 1 { r = -1; for (i = 1; i < NF; i++) if ($i == "max_rel") r = $(i + 1) + 0;
                if (r > m) { m = r; line = $0 } } END { print line }' "$OUT/cuda_ops.log" | sed -E 's/ +/ /g')
        [ -n "$worst" ] && say "    worst $p: ${worst}"
    done
else
    status=1
    say "[FAIL] test_ops was not built"
fi

# ---- 3b. conformance on the GPU: the official vectors through the CUDA backend (fp32) ---------
if [ -x "$BUILD/tests/conformance/test_conformance" ]; then
    : >"$OUT/conformance_cuda.log"
    for g in 0 1; do
        echo "== EDM_TEST_BACKEND=cuda EDM_CUDA_GRAPHS=$g" >>"$OUT/conformance_cuda.log"
        EDM_TEST_BACKEND=cuda EDM_CUDA_GRAPHS=$g timeout 150 "$BUILD/tests/conformance/test_conformance" \
            >"$OUT/conf_one.log" 2>&1
        rc=$?
        cat "$OUT/conf_one.log" >>"$OUT/conformance_cuda.log"
        stage_result "test_conformance on cuda (fp32, graphs $g)" $rc "$OUT/conf_one.log"
        grep -E '^(FAIL|SKIP)|^backend:' "$OUT/conf_one.log" | head -n 10 | sed 's/^/    /' | tee -a "$S"
    done
    rm -f "$OUT/conf_one.log"
fi

# ---- 4. the whole suite -------------------------------------------------------------------
if ls "$BUILD"/tests/*/test_* >/dev/null 2>&1; then
    : >"$OUT/suite.log"
    for t in "$BUILD"/tests/*/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        args=()
        [ "$name" = test_ops ] && args=(--backend cpu) # the cuda part ran in stage 3
        echo "== $name ${args[*]}" >>"$OUT/suite.log"
        timeout 120 "$t" "${args[@]}" >"$OUT/suite_one.log" 2>&1
        rc=$?
        cat "$OUT/suite_one.log" >>"$OUT/suite.log"
        stage_result "$name" $rc "$OUT/suite_one.log"
        [ $rc -ne 0 ] && grep -E '^FAIL' "$OUT/suite_one.log" | head -n 8 | sed 's/^/    /' | tee -a "$S"
        if [ $((SECONDS - T0)) -gt 170 ]; then say "  (suite cut short at $(elapsed)s to leave time for the benchmark)"; break; fi
    done
    rm -f "$OUT/suite_one.log"
fi

# ---- 5. benchmark -------------------------------------------------------------------------
if [ -x "$BUILD/bench/bench_gpu" ]; then
    left=$((280 - (SECONDS - T0)))
    [ $left -lt 60 ] && left=60
    timeout $left "$BUILD/bench/bench_gpu" --batch "${BENCH_BATCH:-1,64,512,2048}" --seconds "${BENCH_SECONDS:-1}" \
        >"$OUT/bench.log" 2>&1
    rc=$?
    stage_result "bench_gpu (limit ${left}s)" $rc "$OUT/bench.log"
    grep -vE '^csv,' "$OUT/bench.log" >>"$S"
else
    status=1
    say "[FAIL] bench_gpu was not built"
fi

# ---- 6. memcheck, if there is time ----------------------------------------------------------
if [ $((SECONDS - T0)) -lt 230 ] && command -v compute-sanitizer >/dev/null 2>&1 && [ -x "$OPS" ]; then
    timeout 60 compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 3 \
        "$OPS" --backend cuda --only ops,contract,sticky,forward,graphs,cuda_memory \
        >"$OUT/sanitizer.log" 2>&1
    rc=$?
    if [ $rc -eq 124 ]; then say "[--]   compute-sanitizer memcheck: not finished in 60 s (not a failure)"
    else
        stage_result "compute-sanitizer memcheck test_ops --backend cuda" $rc "$OUT/sanitizer.log"
        grep -E 'ERROR SUMMARY|Invalid|out of bounds' "$OUT/sanitizer.log" | head -n 10 | sed 's/^/    /' | tee -a "$S"
    fi
fi

say "== done in $(elapsed)s: $([ $status -eq 0 ] && echo 'all stages passed' || echo 'SOME STAGES FAILED')"
echo
echo "---- $S ----"
cat "$S"
exit $status
