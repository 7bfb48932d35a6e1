#!/usr/bin/env bash
# make bench: the engine benchmark on the CIFAR-10 DDPM++ network (random weights), batch 1
# and 16, on the CPU, printed next to the machine's SGEMM rate: the engine as built (fp32),
# the previous engine (EDM_CPU_ONEDNN=0: im2col + OpenBLAS) and --precision bf16, then the
# ratios per batch. Extra arguments go to every run (e.g. --seconds 2 --batch 1,8,16).
# The side-by-side with the official PyTorch code is bench/vs_pytorch.py (needs torch).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
run() { "$BUILD/bench/bench_engine" --preset cifar10-ddpmpp --batch 1,16 --seconds 5 "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== fp32 (oneDNN)"
run "$@" | tee "$tmp/fp32"
echo "== fp32, previous engine (EDM_CPU_ONEDNN=0: im2col + OpenBLAS)"
EDM_CPU_ONEDNN=0 run "$@" | tee "$tmp/old"
echo "== bf16 (--precision bf16)"
if run --precision bf16 "$@" >"$tmp/bf16" 2>&1; then cat "$tmp/bf16"; else
    cat "$tmp/bf16"; : >"$tmp/bf16"; fi
echo "== ratios (ms per image-evaluation; > 1 is faster)"
awk 'FNR == 1 { f++ } $1 ~ /^[0-9]+$/ && NF >= 6 { ms[f, $1] = $3; b[$1] = 1 }
     END { printf "%6s %16s %16s\n", "batch", "fp32 / previous", "bf16 / fp32";
           for (k in b) printf "%6d %16.2f %16s\n", k, ms[2, k] / ms[1, k],
                               ms[3, k] ? sprintf("%.2f", ms[1, k] / ms[3, k]) : "n/a" }' \
    "$tmp/fp32" "$tmp/old" "$tmp/bf16" | sort -n
