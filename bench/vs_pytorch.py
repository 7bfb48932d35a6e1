#!/usr/bin/python3
"""Side by side on the CPU: the official PyTorch forward (NVlabs/edm) and the engine, same network.

    /usr/bin/python3 bench/vs_pytorch.py [--official bench/official] [--nets cifar10,adm64]
        [--threads 2] [--reps 3] [--seconds 2] [--batches 1,8,16] [--engine-modes fp32,bf16]

The official code is imported from --official (default: the ignored folder bench/official,
or $EDM_OFFICIAL), never copied into the repo; fetch it there with, e.g.,
    git clone https://github.com/NVlabs/edm bench/official
It needs torch (Debian's python3-torch) and numpy; run it with /usr/bin/python3.

For each net (the real architectures with random weights, fp32):
  cifar10  edm-cifar10-32x32-cond-vp   (VPPrecond, SongUNet DDPM++, 32x32, 10 classes, augment 9)
  adm64    edm-imagenet-64x64-cond-adm (EDMPrecond, DhariwalUNet ADM, 64x64, 1000 classes)
it builds the official preconditioner (tools/refgen/official.py), writes it as a model file,
checks `edm denoise` against the official fp32 forward on 4 images (relative error per image,
max), then times, interleaved in one run, rep by rep: torch's forward (no_grad, torch pinned to
--threads) and build/bench/bench_engine --model FILE in each --engine-modes mode:
  fp32          the engine as built (oneDNN convolutions)
  fp32-old      EDM_CPU_ONEDNN=0: im2col + OpenBLAS convolutions and GEMMs (the old engine)
  bf16          --precision bf16 (conv and attention operands in bf16, fp32 accumulation)
Each figure is the fastest evaluation (at least 3 per rep, --seconds long) over the reps, for
torch and the engine alike: the machine is shared, and the fastest is the least disturbed.
Printed: ms per image-evaluation at batch 1, the marginal cost per image-evaluation between the
two largest batches ((t16 - t8) / 8), and each engine mode's speed-up over torch.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools", "refgen"))
import official  # noqa: E402

NETS = {
    "cifar10": dict(precond="vp", res=32, label_dim=10, model_type="SongUNet",
                    model_kwargs=dict(model_channels=128, channel_mult=[2, 2, 2], augment_dim=9,
                                      dropout=0.13, embedding_type="positional",
                                      encoder_type="standard", decoder_type="standard",
                                      channel_mult_noise=1, resample_filter=[1, 1])),
    "adm64": dict(precond="edm", res=64, label_dim=1000, model_type="DhariwalUNet",
                  model_kwargs=dict(model_channels=192, channel_mult=[1, 2, 3, 4], num_blocks=3,
                                    attn_resolutions=[32, 16, 8], dropout=0.1)),
}


def torch_time(torch, net, batch, seconds, label_dim, res, aug):
    g = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 3, res, res, generator=g)
    sigma = torch.linspace(0.5, 0.5 + batch - 1, batch)
    labels = torch.zeros(batch, label_dim)
    labels[torch.arange(batch), torch.arange(batch) % label_dim] = 1
    kw = {"augment_labels": torch.zeros(batch, aug)} if aug else {}
    with torch.no_grad():
        net(x, sigma, labels, **kw)  # warm-up
        # the fastest of at least 3 evaluations, as bench_engine reports its own
        reps, t0, best = 0, time.perf_counter(), float("inf")
        while reps < 3 or time.perf_counter() - t0 < seconds:
            e0 = time.perf_counter()
            net(x, sigma, labels, **kw)
            best = min(best, time.perf_counter() - e0)
            reps += 1
        return best * 1e3


def engine_time(bench, model, batches, seconds, threads, mode):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [bench, "--model", model, "--batch", ",".join(map(str, batches)), "--seconds",
           str(seconds)]
    if mode == "bf16":
        cmd += ["--precision", "bf16"]
    if mode == "fp32-old":
        env["EDM_CPU_ONEDNN"] = "0"
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    ms = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            ms[int(m.group(1))] = float(m.group(2))
    return ms


def check(torch, net, edm, model, tmp, label_dim, res, aug):
    g = torch.Generator().manual_seed(99)
    n = 4
    x = torch.randn(n, 3, res, res, generator=g) * 10
    sigma = torch.tensor([0.002, 0.5, 5.0, 80.0])
    labels = torch.zeros(n, label_dim)
    labels[torch.arange(n), torch.arange(n) % label_dim] = 1
    kw = {"augment_labels": torch.zeros(n, aug)} if aug else {}
    with torch.no_grad():
        ref = net(x, sigma, labels, **kw).numpy()
    paths = {k: os.path.join(tmp, k + ".npy") for k in ("x", "s", "l", "a", "d")}
    np.save(paths["x"], x.numpy()), np.save(paths["s"], sigma.numpy())
    np.save(paths["l"], labels.numpy())
    cmd = [edm, "denoise", "--model", model, "--x", paths["x"], "--sigma", paths["s"],
           "--class-labels", paths["l"], "--out", paths["d"], "--backend", "cpu"]
    if aug:
        np.save(paths["a"], np.zeros((n, aug), np.float32))
        cmd += ["--augment-labels", paths["a"]]
    errs = {}
    for prec in ("fp32", "bf16"):
        subprocess.run(cmd + ["--precision", prec], check=True, capture_output=True)
        d = np.load(paths["d"])
        errs[prec] = max(np.linalg.norm(d[i] - ref[i]) / np.linalg.norm(ref[i]) for i in range(n))
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", default=os.environ.get("EDM_OFFICIAL",
                                                         os.path.join(HERE, "official")))
    ap.add_argument("--edm", default=os.path.join(ROOT, "build", "edm"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "bench_engine"))
    ap.add_argument("--nets", default="cifar10,adm64")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--batches", default="1,8,16")
    ap.add_argument("--engine-modes", default="fp32,bf16")
    args = ap.parse_args()
    networks, _, _ = official.import_official(args.official)
    import torch
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    modes = args.engine_modes.split(",")
    print("torch %s (%d threads; mkldnn %s), engine modes %s, best of %d reps, load average %s"
          % (torch.__version__, torch.get_num_threads(), torch.backends.mkldnn.is_available(),
             ",".join(modes), args.reps, " ".join(open("/proc/loadavg").read().split()[:3])))
    for name in args.nets.split(","):
        spec = NETS[name]
        net = official.build(networks, spec["precond"], spec["res"], 3, spec["label_dim"],
                             model_type=spec["model_type"], model_kwargs=spec["model_kwargs"])
        aug = spec["model_kwargs"].get("augment_dim", 0)
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, name + ".safetensors")
            official.write_official_model(net, model)
            errs = check(torch, net, args.edm, model, tmp, spec["label_dim"], spec["res"], aug)
            print("%s: edm denoise vs the official fp32 forward, max relative error per image: "
                  "fp32 %.2e, bf16 %.2e" % (name, errs["fp32"], errs["bf16"]))
            best = {"torch": {}}
            for m in modes:
                best[m] = {}
            for rep in range(args.reps):
                for b in batches:
                    t = torch_time(torch, net, b, args.seconds, spec["label_dim"], spec["res"], aug)
                    best["torch"][b] = min(best["torch"].get(b, 1e30), t)
                for m in modes:
                    for b, t in engine_time(args.bench, model, batches, args.seconds,
                                            args.threads, m).items():
                        best[m][b] = min(best[m].get(b, 1e30), t)
                print("  rep %d done (load %s)" % (rep + 1, open("/proc/loadavg").read().split()[0]),
                      flush=True)
        b1, lo, hi = batches[0], batches[-2], batches[-1]
        print("%s: ms per image-evaluation (best of %d)" % (name, args.reps))
        print("  %-12s %12s %18s %10s %10s" % ("", "batch %d" % b1, "marginal %d->%d" % (lo, hi),
                                              "x torch@%d" % b1, "x torch marg"))
        ref1 = best["torch"][b1] / b1
        refm = (best["torch"][hi] - best["torch"][lo]) / (hi - lo)
        for who in ["torch"] + modes:
            t1 = best[who][b1] / b1
            tm = (best[who][hi] - best[who][lo]) / (hi - lo)
            print("  %-12s %12.1f %18.1f %10.2f %10.2f" % (who, t1, tm, ref1 / t1, refm / tm))


if __name__ == "__main__":
    main()
