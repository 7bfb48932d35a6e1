#!/usr/bin/python3
"""Randomised differential test of `edm denoise` / `edm sample` against the official NVlabs/edm code.

    /usr/bin/python3 tools/refgen/random_check.py --official bench/official --edm build/edm \\
        --count 30 --seed 1 [--cases 3,7] [--keep DIR]

Each case draws a random official preconditioner (vp/ve/iddpm/edm, SongUNet or DhariwalUNet, random
resolution, channels, labels, augment_dim, widths, depths, attention, SongUNet options, sometimes
non-default preconditioner kwargs, F32/F16/BF16 storage), gives it quantised random weights
(official.build), writes it with tools/edmfile.py and compares D(x; sigma) from `edm denoise` with
the official preconditioner for random x and sigmas (0.002..80 plus preconditioner edge values).
About 60% of the cases also run a random edm_sampler / ablation_sampler setting with recorded
latents and per-step noise, replayed by `edm sample --latents --noise`.

The reference is the official preconditioner with its network run in float64 (the preconditioner
itself stays fp32 as in the official code; attention softmax is fp32 there too). Errors are per
image, ||ours - ref|| / ||ref||, maximum over images; each result prints as
"err vs fp64 (vs the official fp32 run; official fp32 vs fp64 = the noise floor)". Some random
nets are ill-conditioned in fp32 (e.g. Fourier embeddings of VP/iDDPM c_noise reach 1e5 radians),
so a result passes when either error is within the tolerance: --tol-d (1e-4) for D, --tol-x
(5e-4) for samplers. A sampler run can amplify fp32 rounding a lot (a random net, few steps,
cancellation in the last step), so its tolerance is raised to 10x its own noise floor where that
is larger (printed as "tol"). On a net whose official fp32 D is itself off by more than --tol-d,
the sampler result is printed but "not judged": such nets are hypersensitive to sigma, and the
ablation sampler's iddpm steps can only be reproduced to ~1e-7 (spec 3.2, fp32 sin).

Case i is drawn from RandomState([seed, i]) alone, so `--seed S --cases i` reproduces it; with
--keep every case's model, inputs, outputs and the exact `edm` command lines stay in DIR/case<i>/.
Exit status 1 when any case fails. The official code is imported from --official, never copied.
"""

import argparse
import copy
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import official  # noqa: E402
import edmfile  # noqa: E402  (official.py put tools/ on sys.path)
from make_vectors import check_iddpm_rounding, iddpm_safe, jsonable  # noqa: E402

MAX_MACS = 400e6       # per image and network evaluation (convolutions and attention)
N_DENOISE = 8          # images per denoise case
N_SAMPLE = 2           # images per sampler case


# -----------------------------------------------------------------------------------------------
# Random configurations


def draw_model(rng):
    """One random preconditioner configuration (not yet checked against the official code)."""
    precond = str(rng.choice(["vp", "ve", "iddpm", "edm"]))
    song = rng.rand() < 0.6
    res = int(rng.choice([8, 16, 32], p=[0.35, 0.45, 0.2]))
    max_levels = min(4, int(math.log2(res)) + 1)
    levels = int(rng.randint(1, max_levels + 1))
    if song:
        mc = int(rng.choice([8, 8, 10, 12, 16, 16, 20, 24, 28, 32, 6, 14, 18, 36]))
        mult = [int(rng.choice([1, 2, 3, 4])) for _ in range(levels)]
    else:
        mc = int(rng.choice([8, 12, 16, 16, 20, 24, 32, 10, 14]))
        mult = [int(rng.choice([1, 2, 3, 4, 8])) for _ in range(levels)]
        if rng.rand() < 0.5:  # make sure some attention has 2+ heads (channels_per_head 64)
            mult[-1] = max(mult[-1], -(-128 // mc))
    resolutions = [res >> lv for lv in range(levels)]
    attn = [r for r in resolutions if rng.rand() < 0.4]
    if rng.rand() < 0.1:
        attn.append(int(rng.choice([64, 3])))  # a resolution that does not occur is ignored
    mk = dict(model_channels=mc, channel_mult=mult, channel_mult_emb=int(rng.choice([1, 2, 3, 4])),
              num_blocks=int(rng.choice([1, 1, 2, 2, 3])), attn_resolutions=attn,
              dropout=float(rng.choice([0.0, 0.1, 0.13])),
              label_dropout=float(rng.choice([0.0, 0.0, 0.1])),
              augment_dim=int(rng.choice([0, 0, 9])))
    if song:
        mk.update(embedding_type=str(rng.choice(["positional", "fourier"])),
                  channel_mult_noise=int(rng.choice([1, 2])),
                  encoder_type=str(rng.choice(["standard", "skip", "residual"])),
                  decoder_type=str(rng.choice(["standard", "skip"])),
                  resample_filter=[[1, 1], [1, 3, 3, 1]][rng.randint(2)])
    pk = {}
    if rng.rand() < 0.3:
        pk = {
            "vp": lambda: dict(beta_d=float(rng.choice([10.0, 18.0, 25.0])),
                               beta_min=float(rng.choice([0.05, 0.2, 0.5])),
                               M=int(rng.choice([200, 500, 2000])),
                               epsilon_t=float(rng.choice([1e-4, 1e-3]))),
            "ve": lambda: dict(sigma_min=float(rng.choice([0.002, 0.01, 0.05])),
                               sigma_max=float(rng.choice([50.0, 80.0, 200.0]))),
            "iddpm": lambda: dict(C_1=float(rng.choice([0.0005, 0.002])),
                                  C_2=float(rng.choice([0.004, 0.02])),
                                  M=int(rng.choice([100, 500, 2000]))),
            "edm": lambda: dict(sigma_min=float(rng.choice([0.0, 0.001, 0.01])),
                                sigma_max=float(rng.choice([math.inf, 60.0, 200.0])),
                                sigma_data=float(rng.choice([0.3, 0.6, 1.0]))),
        }[precond]()
    return dict(precond=precond, model_type="SongUNet" if song else "DhariwalUNet", res=res,
                ch=int(rng.randint(1, 5)), label_dim=int(rng.choice([0, 0, 1, 3, 10])),
                use_fp16=bool(rng.rand() < 0.1), precond_kwargs=pk, model_kwargs=mk,
                dtype=str(rng.choice(["F32", "F16", "BF16"], p=[0.7, 0.15, 0.15])),
                seed=int(rng.randint(1 << 30)))


def draw_sampler(rng):
    """A random edm_sampler or ablation_sampler setting: (name, kwargs); None = sampler default."""
    kw = dict(num_steps=int(rng.randint(2, 9)), rho=float(rng.choice([7.0, 7.0, 3.0, 5.0, 9.5])))
    if rng.rand() < 0.5:
        kw.update(S_churn=float(rng.choice([5.0, 10.0, 40.0, 80.0])),
                  S_min=float(rng.choice([0.0, 0.01, 0.05, 0.3])),
                  S_max=float(rng.choice([math.inf, 1.0, 10.0, 50.0])),
                  S_noise=float(rng.choice([1.0, 1.003, 1.007, 1.05])))
    if rng.rand() < 0.4:
        kw["sigma_min"] = float("%.3g" % math.exp(rng.uniform(math.log(0.002), math.log(0.1))))
        kw["sigma_max"] = float("%.3g" % math.exp(rng.uniform(math.log(5), math.log(150))))
    if rng.rand() < 0.4:
        return "edm", kw
    kw.update(solver=str(rng.choice(["euler", "heun"])),
              discretization=str(rng.choice(["vp", "ve", "iddpm", "edm"])),
              schedule=str(rng.choice(["vp", "ve", "linear"])), scaling=str(rng.choice(["vp", "none"])))
    if kw["solver"] == "heun" and rng.rand() < 0.4:
        kw["alpha"] = float(rng.choice([0.3, 0.5, 0.75]))
    kw.setdefault("sigma_min", None)
    kw.setdefault("sigma_max", None)
    return "ablation", kw


def model_summary(cfg):
    mk = cfg["model_kwargs"]
    s = "%s %s R%d C%d L%d A%d mc%d %s e%d nb%d attn%s" % (
        cfg["precond"], "Song" if cfg["model_type"] == "SongUNet" else "Dhar", cfg["res"], cfg["ch"],
        cfg["label_dim"], mk["augment_dim"], mk["model_channels"], mk["channel_mult"],
        mk["channel_mult_emb"], mk["num_blocks"], mk["attn_resolutions"])
    if cfg["model_type"] == "SongUNet":
        s += " %s/n%d enc=%s dec=%s f%d" % (mk["embedding_type"][:3], mk["channel_mult_noise"],
                                            mk["encoder_type"][:3], mk["decoder_type"][:3],
                                            len(mk["resample_filter"]))
    if cfg["precond_kwargs"]:
        s += " pk" + json.dumps(cfg["precond_kwargs"], separators=(",", ":")).replace('"', "")
    return s + " %s%s" % (cfg["dtype"], " fp16" if cfg["use_fp16"] else "")


def sampler_summary(name, kw):
    s = "%s n%d rho%g" % (name, kw["num_steps"], kw["rho"])
    if name == "ablation":
        s = "abl %s/%s/%s/%s a%g n%d rho%g" % (kw["solver"], kw["discretization"], kw["schedule"],
                                               kw["scaling"], kw.get("alpha", 1), kw["num_steps"], kw["rho"])
    if kw.get("S_churn"):
        s += " churn%g[%g,%g]x%g" % (kw["S_churn"], kw["S_min"], kw["S_max"], kw["S_noise"])
    if kw.get("sigma_min") is not None:
        s += " sig[%g,%g]" % (kw["sigma_min"], kw["sigma_max"])
    return s


# -----------------------------------------------------------------------------------------------
# Official networks


def build_net(networks, cfg, torch):
    """(official net with random weights, MACs per image of one evaluation), or (None, 0) when the
    official code rejects the config (at construction or in a trial forward)."""
    try:
        net = official.build(networks, cfg["precond"], cfg["res"], cfg["ch"], cfg["label_dim"],
                             use_fp16=cfg["use_fp16"], precond_kwargs=cfg["precond_kwargs"],
                             model_type=cfg["model_type"], model_kwargs=cfg["model_kwargs"],
                             seed=cfg["seed"])
    except (AssertionError, RuntimeError, ValueError, TypeError, ZeroDivisionError):
        return None, 0
    macs = [0.0]

    def count(mod, inp, out):
        if type(mod).__name__ == "Conv2d" and mod.weight is not None:
            macs[0] += mod.weight.numel() * out.shape[-1] * out.shape[-2]
        elif type(mod).__name__ == "UNetBlock" and mod.num_heads:
            macs[0] += 2 * out.shape[1] * (out.shape[-1] * out.shape[-2]) ** 2

    hooks = [m.register_forward_hook(count) for m in net.modules()
             if type(m).__name__ in ("Conv2d", "UNetBlock")]
    x = torch.randn(1, cfg["ch"], cfg["res"], cfg["res"])
    lab = torch.zeros(1, cfg["label_dim"]) if cfg["label_dim"] else None
    aug = cfg["model_kwargs"]["augment_dim"]
    kw = {"augment_labels": torch.zeros(1, aug)} if aug else {}
    try:
        with torch.no_grad():
            out = net(x, torch.ones(1), lab, **kw)
        ok = tuple(out.shape) == tuple(x.shape)
    except (RuntimeError, ValueError, IndexError):  # e.g. GroupNorm groups not dividing the channels
        ok = False
    for h in hooks:
        h.remove()
    return (net, macs[0]) if ok else (None, 0)


def float64_twin(net, torch):
    """A copy of the official preconditioner whose network runs in float64 (inputs cast up, output
    cast back to fp32, so the preconditioner's own fp32 arithmetic is unchanged). Fourier
    frequencies are set so that 2*pi*freqs equals the fp32 product the official code forms."""

    class Float64Model(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.inner = model.double()

        def forward(self, x, noise_labels, class_labels=None, **kwargs):
            def up(t):
                return None if t is None else t.double()
            return self.inner(x.double(), noise_labels.double(), up(class_labels),
                              **{k: up(v) for k, v in kwargs.items()}).float()

    twin = copy.deepcopy(net)
    freqs = getattr(twin.model.map_noise, "freqs", None)
    if freqs is not None:
        twin.model.map_noise.freqs = (2 * np.pi * freqs).double() / (2 * np.pi)
    twin.model = Float64Model(twin.model)
    return twin.eval()


def check_stored_exact(path, net):
    """The file must hold exactly the official net's values (random_value is exact in 16 bits)."""
    tensors, _cfg, _meta = edmfile.read_model(path)
    sd = net.state_dict()
    if list(tensors) != list(sd):
        raise RuntimeError("stored tensor names differ from the state_dict")
    for k, v in sd.items():
        if not np.array_equal(np.asarray(tensors[k], dtype=np.float32), v.numpy()):
            raise RuntimeError("%s is not stored exactly" % k)


# -----------------------------------------------------------------------------------------------
# Cases


def rel_err(ours, ref):
    """max over images of ||ours - ref|| / ||ref|| (NaN when ours is not finite)."""
    a = np.asarray(ours, dtype=np.float64).reshape(len(ref), -1)
    r = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    e = np.linalg.norm(a - r, axis=1) / np.maximum(np.linalg.norm(r, axis=1), 1e-30)
    return float(np.max(e)) if np.all(np.isfinite(a)) else math.nan


def nan_last(e):
    """Sort key that ranks NaN above every number."""
    return math.inf if math.isnan(e) else e


def run_edm(cmd, log):
    log.append(" ".join(shlex.quote(c) for c in cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode:
        raise RuntimeError("edm exited %d: %s" % (p.returncode, p.stderr.strip()[-300:]))


def denoise_sigmas(rng, cfg, net):
    """N_DENOISE sigmas: 0.002, 80, random log-uniform ones and preconditioner edge values."""
    s = [0.002, 80.0] + list(np.exp(rng.uniform(math.log(0.002), math.log(80), N_DENOISE - 2)))
    if cfg["precond"] in ("vp", "ve"):
        s[2], s[3] = float(net.sigma_min), float(net.sigma_max)
    elif cfg["precond"] == "edm":
        s[2] = float(rng.choice([1e-4, 200.0, cfg["precond_kwargs"].get("sigma_data", 0.5)]))
    else:
        u = net.u.double().numpy()
        M = len(u) - 1
        s[2] = 0.3 * u[M - 1]                       # nearest entry u[M] = 0: c_noise = -1
        s[3] = u[rng.randint(1, M)]                 # exactly a table entry
        s[4] = float(rng.choice([u[1] * 1.01, u[0]]))  # large sigma (u[0] ~ 2e4)
        for i in range(N_DENOISE):                  # nudge sigmas away from midpoints of u
            for f in (1.0, 1.01, 0.99, 1.02, 0.98, 1.03, 0.97):
                if iddpm_safe(u, s[i] * f):
                    s[i] *= f
                    break
    order = rng.permutation(N_DENOISE)
    return np.array(s, dtype=np.float64)[order].astype(np.float32)


def check_denoise(rng, cfg, net, net64, torch, args, work, log):
    N, C, R, L = N_DENOISE, cfg["ch"], cfg["res"], cfg["label_dim"]
    A = cfg["model_kwargs"]["augment_dim"]
    sigma = denoise_sigmas(rng, cfg, net)
    if rng.rand() < 0.15:  # one sigma for every image, as shape () or (1,)
        sigma = np.array(sigma[0], dtype=np.float32).reshape([(), (1,)][rng.randint(2)])
    clean = rng.uniform(-1, 1, size=(N, C, R, R))
    x = (clean + sigma.reshape(-1, 1, 1, 1).astype(np.float64) * rng.randn(N, C, R, R)).astype(np.float32)
    labels = np.eye(L, dtype=np.float32)[rng.randint(L, size=N)] if L and rng.rand() < 0.8 else None
    aug = (0.5 * rng.randn(N, A)).astype(np.float32) if A and rng.rand() < 0.7 else None
    files = dict(x=x, sigma=sigma, labels=labels, augment=aug)
    for k, v in files.items():
        if v is not None:
            np.save(os.path.join(work, k + ".npy"), v)
    kw = {"augment_labels": torch.from_numpy(aug)} if aug is not None else {}
    targs = (torch.from_numpy(x), torch.from_numpy(sigma),
             torch.from_numpy(labels) if labels is not None else None)
    with torch.no_grad():
        d32 = net(*targs, **kw).numpy()
        d64 = net64(*targs, **kw).numpy()
    out = os.path.join(work, "D_ours.npy")
    cmd = [args.edm, "denoise", "--model", os.path.join(work, "model.safetensors"),
           "--x", os.path.join(work, "x.npy"), "--sigma", os.path.join(work, "sigma.npy"),
           "--out", out, "--backend", "cpu", "--threads", str(args.threads)]
    if labels is not None:
        cmd += ["--class-labels", os.path.join(work, "labels.npy")]
    if aug is not None:
        cmd += ["--augment-labels", os.path.join(work, "augment.npy")]
    if rng.rand() < 0.3:  # several network evaluations, the last one partial
        cmd += ["--batch", str(rng.randint(1, N))]
    np.save(os.path.join(work, "D_ref64.npy"), d64)
    np.save(os.path.join(work, "D_off32.npy"), d32)
    run_edm(cmd, log)
    ours = np.load(out)
    if ours.shape != d64.shape:
        raise RuntimeError("edm denoise wrote shape %s, expected %s" % (ours.shape, d64.shape))
    return rel_err(ours, d64), rel_err(ours, d32), rel_err(d32, d64)


def official_sample(generate, net, name, kw, latents, labels, noise, torch):
    calls = []

    def randn_like(x):
        calls.append(1)
        assert tuple(x.shape) == noise.shape[1:]
        return torch.from_numpy(noise[len(calls) - 1]).to(x.dtype)

    fn = generate.edm_sampler if name == "edm" else generate.ablation_sampler
    with torch.no_grad():
        x = fn(net, torch.from_numpy(latents), torch.from_numpy(labels) if labels is not None else None,
               randn_like=randn_like, **kw)
    assert len(calls) == kw["num_steps"], (len(calls), kw["num_steps"])
    return x.numpy()


def sample_flags(name, kw):
    flags = ["--steps", str(kw["num_steps"]), "--rho", repr(kw["rho"])]
    for k in ("sigma_min", "sigma_max", "S_churn", "S_min", "S_max", "S_noise", "alpha"):
        v = kw.get(k)
        if v is not None and not (isinstance(v, float) and math.isinf(v)):
            flags += ["--" + k, repr(v)]
    if name == "ablation":
        flags += ["--solver", kw["solver"], "--disc", kw["discretization"], "--schedule", kw["schedule"],
                  "--scaling", kw["scaling"]]
    return flags


def check_sample(rng, cfg, net, net64, torch, generate, args, work, log):
    """Draw sampler settings until the official run is finite and free of ambiguous iDDPM rounding;
    returns (summary, (err vs fp64 reference, err vs official fp32, official fp32 floor))."""
    N, C, R, L = N_SAMPLE, cfg["ch"], cfg["res"], cfg["label_dim"]
    for _attempt in range(10):
        name, kw = draw_sampler(rng)
        latents = rng.randn(N, C, R, R).astype(np.float32)
        noise = rng.randn(kw["num_steps"], N, C, R, R).astype(np.float32)
        classes = rng.randint(max(L, 1), size=N) if rng.rand() < 0.8 else np.full(N, rng.randint(max(L, 1)))
        labels = np.eye(L, dtype=np.float32)[classes] if L else None
        try:
            x32 = official_sample(generate, net, name, kw, latents, labels, noise, torch)
            x64 = official_sample(generate, net64, name, kw, latents, labels, noise, torch)
        except RuntimeError as e:  # a sigma too close to a midpoint of the iDDPM u table
            if "midpoint" not in str(e) and "argmin" not in str(e):
                raise
            continue
        if np.all(np.isfinite(x32)) and np.all(np.isfinite(x64)):
            break
    else:
        return "no valid sampler setting", (math.nan,) * 3
    for k, v in dict(latents=latents, noise=noise, labels=labels, x_ref64=x64, x_off32=x32).items():
        if v is not None:
            np.save(os.path.join(work, k + ".npy"), v)
    with open(os.path.join(work, "sampler.json"), "w") as f:
        json.dump(jsonable(dict(sampler=name, **kw)), f, indent=2)
    out = os.path.join(work, "x_ours.npy")
    cmd = [args.edm, "sample", "--model", os.path.join(work, "model.safetensors"),
           "--latents", os.path.join(work, "latents.npy"), "--noise", os.path.join(work, "noise.npy"),
           "--out", out, "--backend", "cpu", "--threads", str(args.threads)] + sample_flags(name, kw)
    if labels is not None and np.all(classes == classes[0]):
        cmd += ["--class", str(classes[0])]
    elif labels is not None:
        cmd += ["--class-labels", os.path.join(work, "labels.npy")]
    if rng.rand() < 0.3:
        cmd += ["--batch", "1"]
    run_edm(cmd, log)
    ours = np.load(out)
    if ours.shape != x64.shape:
        raise RuntimeError("edm sample wrote shape %s, expected %s" % (ours.shape, x64.shape))
    return sampler_summary(name, kw), (rel_err(ours, x64), rel_err(ours, x32), rel_err(x32, x64))


def run_case(i, args, networks, generate, torch, root):
    """Run case i; returns (line, passed, d_err, x_err)."""
    rng = np.random.RandomState([args.seed, i])
    for _attempt in range(200):
        cfg = draw_model(rng)
        net, macs = build_net(networks, cfg, torch)
        if net is not None and macs <= MAX_MACS:
            break
    else:
        raise RuntimeError("no valid configuration drawn")
    work = os.path.join(root, "case%03d" % i)
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "config.json"), "w") as f:
        json.dump(jsonable(cfg), f, indent=2)
    net64 = float64_twin(net, torch)
    if cfg["precond"] == "iddpm":
        check_iddpm_rounding(net, torch)
        check_iddpm_rounding(net64, torch)
    path = os.path.join(work, "model.safetensors")
    edmfile.write_model(path, official.state_tensors(net), official.official_config(net),
                        {"generator": "tools/refgen/random_check.py"}, dtype=cfg["dtype"],
                        keep_f32=edmfile.F32_BUFFERS)
    check_stored_exact(path, net)
    log = []
    line = "case %3d %s %.0fM MAC" % (i, model_summary(cfg), macs / 1e6)
    ok = True
    d_err = x_err = None
    t0 = time.time()
    try:
        errs = check_denoise(rng, cfg, net, net64, torch, args, work, log)
        d_err = min(errs[:2])
        ok = d_err <= args.tol_d
        ill = errs[2] > args.tol_d
        line += " | D %.2g (%.2g, %.2g)" % errs
        if rng.rand() < args.sample_fraction:
            summary, errs = check_sample(rng, cfg, net, net64, torch, generate, args, work, log)
            line += " | %s: x %.2g (%.2g, %.2g)" % ((summary,) + errs)
            if ill:
                line += " not judged"
            else:
                x_err = min(errs[:2])
                x_tol = max(args.tol_x, 10 * errs[2])
                ok = ok and x_err <= x_tol
                if x_tol > args.tol_x:
                    line += " tol %.2g" % x_tol
    except RuntimeError as e:
        ok = False
        line += " | error: %s" % e
    with open(os.path.join(work, "commands.txt"), "w") as f:
        f.write("\n".join(log) + "\n")
    line += " | %.1fs %s" % (time.time() - t0, "PASS" if ok else "FAIL")
    return line, ok, d_err, x_err


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="path of the NVlabs/edm checkout")
    ap.add_argument("--edm", default="build/edm", help="the edm binary (default build/edm)")
    ap.add_argument("--count", type=int, default=30, help="number of cases (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the case draws (default 0)")
    ap.add_argument("--cases", default=None, help="comma-separated case indices to run (default 0..count-1)")
    ap.add_argument("--keep", default=None, help="keep every case's files in DIR/case<i>/")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for edm (default 2)")
    ap.add_argument("--tol-d", type=float, default=1e-4, help="D tolerance (default 1e-4)")
    ap.add_argument("--tol-x", type=float, default=5e-4, help="sampler tolerance (default 5e-4)")
    ap.add_argument("--sample-fraction", type=float, default=0.6,
                    help="fraction of cases that also run a sampler (default 0.6)")
    args = ap.parse_args()
    if not os.path.isfile(args.edm):
        raise SystemExit("error: %s not found (make -j2 build/edm)" % args.edm)
    networks, _loss, generate = official.import_official(args.official)
    import torch
    torch.set_num_threads(1)  # this CPU torch is many times slower on small convs with 2 threads
    cases = [int(c) for c in args.cases.split(",")] if args.cases else range(args.count)
    root = args.keep or tempfile.mkdtemp(prefix="edm_random_check_")
    passed = failed = 0
    worst_d = worst_x = 0.0
    try:
        for i in cases:
            line, ok, d_err, x_err = run_case(i, args, networks, generate, torch, root)
            print(line, flush=True)
            passed += ok
            failed += not ok
            worst_d = max(worst_d, 0.0 if d_err is None else d_err, key=nan_last)
            worst_x = max(worst_x, 0.0 if x_err is None else x_err, key=nan_last)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("max D err %.2g, max sampler err %.2g (judged results; the smaller of the two errors)"
          % (worst_d, worst_x))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
