#!/usr/bin/python3
"""Make the committed reference vectors (tests/vectors/) with the official NVlabs/edm code.

    /usr/bin/python3 tools/refgen/make_vectors.py --official bench/official --out tests/vectors

The official code is imported from --official (never copied into this repo). Torch on CPU, fp32
networks, fixed seeds: rerunning gives the same files up to torch/BLAS rounding differences.
Layout and file meanings: tests/vectors/README.md.

Each model is an official preconditioner built with small kwargs and then given random weights
of a sensible scale (official.build), because the official initialisation zeroes several output
layers, which would make a conformance test nearly trivial.
"""

import argparse
import json
import math
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import official  # noqa: E402
import edmfile  # noqa: E402  (official.py put tools/ on sys.path)

# -----------------------------------------------------------------------------------------------
# Models. Each is a denoise case; sampler cases below reuse them by name.
# "covers" is for humans (README / index.json).

MODELS = [
    dict(name="edm_songunet_ddpmpp", seed=1,
         precond="edm", res=16, ch=3, label_dim=0, model_type="SongUNet",
         model_kwargs=dict(model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8]),
         covers="spec A.1; EDM precond; SongUNet DDPM++: positional, channel_mult_noise 1, "
                "encoder/decoder standard, resample [1,1], attention at 8x8, unconditional"),
    dict(name="ve_songunet_ncsnpp_resid_skip", seed=2, acts=True,
         precond="ve", res=16, ch=3, label_dim=0, model_type="SongUNet",
         model_kwargs=dict(model_channels=16, channel_mult=[1, 2, 2], channel_mult_emb=4, num_blocks=1,
                           attn_resolutions=[8], dropout=0.13, label_dropout=0, embedding_type="fourier",
                           channel_mult_noise=2, encoder_type="residual", decoder_type="skip",
                           resample_filter=[1, 3, 3, 1]),
         covers="spec A; VE precond; SongUNet NCSN++: fourier, channel_mult_noise 2, encoder residual "
                "(fused down, [1,3,3,1]), decoder skip (aux_up FIR), 3 levels; per-module activations"),
    dict(name="iddpm_dhariwal_cond", seed=3, acts=True, nolabels=True,
         precond="iddpm", res=16, ch=3, label_dim=10, model_type="DhariwalUNet",
         model_kwargs=dict(model_channels=16, channel_mult=[1, 4], channel_mult_emb=4, num_blocks=1,
                           attn_resolutions=[16, 8], dropout=0.1, label_dropout=0),
         covers="spec A; iDDPM precond (u buffer, c_noise index incl. -1, 2C outputs); DhariwalUNet "
                "heads 0 (16 ch at 16x16) and 1 (64 ch); labels; labels absent; per-module activations"),
    dict(name="edm_dhariwal_cond_aug_2heads", seed=4, nolabels=True, noaug=True, dtype="F16",
         precond="edm", res=16, ch=3, label_dim=10, model_type="DhariwalUNet",
         model_kwargs=dict(augment_dim=9, model_channels=16, channel_mult=[2, 8], channel_mult_emb=4,
                           num_blocks=1, attn_resolutions=[8], dropout=0.1, label_dropout=0),
         covers="spec A; EDM precond; DhariwalUNet 2 heads (128 ch), labels, augment_dim 9, labels "
                "absent, augment absent; stored as F16 (2.4M parameters)"),
    dict(name="vp_songunet_cond_aug", seed=5, nolabels=True, noaug=True,
         precond="vp", res=16, ch=3, label_dim=10, model_type="SongUNet",
         model_kwargs=dict(augment_dim=9, model_channels=16, channel_mult=[1, 2], num_blocks=2,
                           attn_resolutions=[16], dropout=0.13, embedding_type="positional",
                           channel_mult_noise=2, encoder_type="skip", decoder_type="standard",
                           resample_filter=[1, 3, 3, 1]),
         covers="VP precond (defaults); SongUNet positional with channel_mult_noise 2, encoder skip "
                "(aux_down/aux_skip), decoder standard, [1,3,3,1], num_blocks 2, attention at 16x16, "
                "labels (sqrt scaling, bias), augment_dim 9, labels absent, augment absent"),
    dict(name="edm_songunet_gray8", seed=6,
         precond="edm", res=8, ch=1, label_dim=0, model_type="SongUNet",
         precond_kwargs=dict(sigma_data=0.6),
         model_kwargs=dict(model_channels=8, channel_mult=[1, 2], channel_mult_emb=2, num_blocks=1,
                           attn_resolutions=[8], embedding_type="fourier", channel_mult_noise=1,
                           encoder_type="residual", decoder_type="skip", resample_filter=[1, 1]),
         covers="EDM precond with sigma_data 0.6; 1 channel, 8x8; SongUNet fourier with "
                "channel_mult_noise 1, encoder residual with [1,1] (fused, f_pad 0), decoder skip "
                "with [1,1] (nearest aux_up), channel_mult_emb 2, attention at the top level"),
    dict(name="vp_songunet_1level_gray", seed=7,
         precond="vp", res=8, ch=1, label_dim=3, model_type="SongUNet",
         precond_kwargs=dict(beta_d=18.0, beta_min=0.2, M=500, epsilon_t=1e-4),
         model_kwargs=dict(model_channels=8, channel_mult=[2], num_blocks=2, attn_resolutions=[],
                           dropout=0.0),
         covers="VP precond with non-default beta_d, beta_min, M, epsilon_t; single-level SongUNet "
                "(no up/down), no attention except dec in0, 1 channel, label_dim 3"),
    dict(name="edm_dhariwal_uncond_gray8", seed=8, dtype="BF16",
         precond="edm", res=8, ch=1, label_dim=0, model_type="DhariwalUNet",
         model_kwargs=dict(model_channels=8, channel_mult=[1, 2, 4], channel_mult_emb=2, num_blocks=1,
                           attn_resolutions=[4]),
         covers="EDM precond; unconditional DhariwalUNet, 1 channel, 8x8, 3 levels down to 2x2, "
                "attention requested at 4x4 but only 16/32 ch so heads 0 everywhere "
                "(in0 included), channel_mult_emb 2; stored as BF16"),
]

# Sampler cases. kwargs are passed to the official sampler exactly as given (None = the sampler's
# own default, written to params.json as null; float('inf') written as "inf").
SAMPLES = [
    dict(name="sample_edm_det18_vp", model="vp_songunet_cond_aug", sampler="edm", seed=101,
         kwargs=dict(num_steps=18, sigma_min=0.002, sigma_max=80, rho=7, S_churn=0, S_min=0,
                     S_max=math.inf, S_noise=1),
         covers="edm_sampler, deterministic, 18 steps (35 NFE), VP model clamps sigma_min"),
    dict(name="sample_edm_stoch_dhariwal", model="edm_dhariwal_cond_aug_2heads", sampler="edm", seed=102,
         kwargs=dict(num_steps=6, sigma_min=0.002, sigma_max=80, rho=7, S_churn=40, S_min=0.05,
                     S_max=50, S_noise=1.003),
         covers="edm_sampler, stochastic (ImageNet settings), gamma 0 on the first step (t > S_max)"),
    dict(name="sample_edm_iddpm", model="iddpm_dhariwal_cond", sampler="edm", seed=103,
         kwargs=dict(num_steps=6, sigma_min=0.002, sigma_max=80, rho=7, S_churn=10, S_min=0.01,
                     S_max=10, S_noise=1.0),
         covers="edm_sampler on iDDPM: round_sigma of t_i and t_hat snaps to u, sigma_max 80 < u[0]"),
    dict(name="sample_edm_gray", model="edm_songunet_gray8", sampler="edm", seed=104,
         kwargs=dict(num_steps=5, sigma_min=0.01, sigma_max=40, rho=5, S_churn=0, S_min=0,
                     S_max=math.inf, S_noise=1),
         covers="edm_sampler with non-default sigma range and rho, 1-channel uint8"),
    dict(name="sample_abl_euler_vp_vp_vp", model="vp_songunet_cond_aug", sampler="ablation", seed=105,
         kwargs=dict(num_steps=8, sigma_min=None, sigma_max=None, rho=7, solver="euler",
                     discretization="vp", schedule="vp", scaling="vp", S_churn=0, S_min=0,
                     S_max=math.inf, S_noise=1),
         covers="ablation euler/vp/vp/vp (re-derived VP betas, default vp sigma range)"),
    dict(name="sample_abl_heun_edm_vp_vp", model="vp_songunet_cond_aug", sampler="ablation", seed=106,
         kwargs=dict(num_steps=6, sigma_min=None, sigma_max=None, rho=7, solver="heun",
                     discretization="edm", schedule="vp", scaling="vp", S_churn=0, S_min=0,
                     S_max=math.inf, S_noise=1),
         covers="ablation heun/edm/vp/vp"),
    dict(name="sample_abl_heun_ve_ve_none", model="ve_songunet_ncsnpp_resid_skip", sampler="ablation",
         seed=107,
         kwargs=dict(num_steps=6, sigma_min=None, sigma_max=None, rho=7, solver="heun",
                     discretization="ve", schedule="ve", scaling="none", S_churn=5, S_min=0.05,
                     S_max=50, S_noise=1.007),
         covers="ablation heun/ve/ve/none, unconditional, stochastic (churn on the steps inside "
                "[S_min, S_max])"),
    dict(name="sample_abl_heun_iddpm_linear_none", model="iddpm_dhariwal_cond", sampler="ablation",
         seed=108,
         kwargs=dict(num_steps=6, sigma_min=None, sigma_max=None, rho=7, solver="heun",
                     discretization="iddpm", schedule="linear", scaling="none", S_churn=0, S_min=0,
                     S_max=math.inf, S_noise=1),
         covers="ablation heun/iddpm/linear/none (sampler's own fp64 u table, half-even index)"),
    dict(name="sample_abl_heun_edm_linear_none_a05", model="edm_dhariwal_cond_aug_2heads",
         sampler="ablation", seed=109,
         kwargs=dict(num_steps=5, sigma_min=None, sigma_max=None, rho=7, solver="heun",
                     discretization="edm", schedule="linear", scaling="none", alpha=0.5, S_churn=0,
                     S_min=0, S_max=math.inf, S_noise=1),
         covers="ablation heun/edm/linear/none with alpha 0.5"),
]

DENOISE_SIGMAS = [0.5, 80.0, 0.002, 3.0, 40.0, 0.05]  # image 0 also carries the activations


# -----------------------------------------------------------------------------------------------

def jsonable(v):
    if isinstance(v, dict):
        return {k: jsonable(a) for k, a in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(a) for a in v]
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(jsonable(obj), f, indent=2)
        f.write("\n")


def check_exact(net, dtype, torch):
    """The stored values must equal the official ones exactly (weights are quantised for this)."""
    for k, v in net.state_dict().items():
        r = {"F32": v, "F16": v.half().float(), "BF16": v.bfloat16().float()}[dtype]
        if not torch.equal(r, v):
            raise RuntimeError("%s is not exact in %s" % (k, dtype))


def iddpm_safe(u, s):
    """True when fp32 sigma s is well away from a midpoint between two u entries."""
    d = np.sort(np.abs(np.float64(np.float32(s)) - u))
    return d[1] - d[0] >= 1e-4 * max(abs(float(s)), 1e-30)


def check_iddpm_rounding(net, torch):
    """Wrap net.round_sigma so every call (the preconditioner's own and the samplers') is checked
    against an exact fp64 argmin and kept well away from midpoints between u entries (spec 2.3):
    the official cdist-based argmin can pick the farther neighbour near a midpoint."""
    orig = net.round_sigma
    u = net.u.double().numpy()

    def checked(sigma, return_index=False):
        res = orig(sigma, return_index=return_index)
        s = torch.as_tensor(sigma).to(torch.float32).double().numpy().reshape(-1)
        idx = orig(sigma, return_index=True).numpy().reshape(-1)
        for sv, j in zip(s, idx):
            d = np.abs(sv - u)
            jx = int(np.argmin(d))
            if jx != int(j):
                raise RuntimeError("official round_sigma(%r) picked u[%d], exact argmin u[%d]" % (sv, j, jx))
            if not iddpm_safe(u, sv):
                raise RuntimeError("sigma %r is too close to a midpoint of u" % sv)
        return res

    net.round_sigma = checked


def capture_acts(net, torch, args, kwargs):
    """Run net(*args, **kwargs) with forward hooks; return {name: ndarray}."""
    acts = {}
    hooks = []
    model = net.model

    def saver(name):
        def hook(mod, inp, out):
            acts[name] = out.detach().float().numpy().copy()
        return hook

    def model_hook(mod, inp, out):
        acts["model_in"] = inp[0].detach().float().numpy().copy()
        acts["c_noise"] = inp[1].detach().float().numpy().copy()
        acts["F"] = out.detach().float().numpy().copy()

    def emb_hook(mod, inp):
        if "emb" not in acts:
            acts["emb"] = inp[1].detach().float().numpy().copy()

    hooks.append(model.register_forward_hook(model_hook))
    for part in ("enc", "dec"):
        for name, mod in getattr(model, part).items():
            hooks.append(mod.register_forward_hook(saver("%s.%s" % (part, name))))
            if "emb" not in acts and type(mod).__name__ == "UNetBlock":
                hooks.append(mod.register_forward_pre_hook(emb_hook))
    for name in ("out_norm", "out_conv"):
        if hasattr(model, name):
            hooks.append(getattr(model, name).register_forward_hook(saver(name)))
    try:
        with torch.no_grad():
            net(*args, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    return acts


def make_denoise(case, net, outdir, torch):
    rng = np.random.RandomState(1000 + case["seed"])
    N, C, R, L = len(DENOISE_SIGMAS), case["ch"], case["res"], case["label_dim"]
    A = net.model.map_augment.in_features if getattr(net.model, "map_augment", None) is not None else 0
    sigma = np.array(DENOISE_SIGMAS, dtype=np.float64)
    if case["precond"] == "iddpm":  # nudge sigmas away from midpoints of u (spec 2.3)
        u = net.u.double().numpy()
        for i in range(N):
            for f in (1.0, 1.01, 0.99, 1.02, 0.98, 1.03, 0.97):
                if iddpm_safe(u, sigma[i] * f):
                    sigma[i] *= f
                    break
            else:
                raise RuntimeError("no safe sigma near %g" % sigma[i])
    sigma = sigma.astype(np.float32)
    clean = rng.uniform(-1, 1, size=(N, C, R, R))
    x = (clean + sigma.reshape(-1, 1, 1, 1).astype(np.float64) * rng.randn(N, C, R, R)).astype(np.float32)
    files = {"x.npy": "input x (N,C,R,R) float32", "sigma.npy": "(N,) float32"}
    np.save(os.path.join(outdir, "x.npy"), x)
    np.save(os.path.join(outdir, "sigma.npy"), sigma)
    labels = aug = None
    if L:
        labels = np.eye(L, dtype=np.float32)[rng.randint(L, size=N)]
        np.save(os.path.join(outdir, "labels.npy"), labels)
        files["labels.npy"] = "one-hot class labels (N,label_dim) float32"
    if A:
        aug = (0.5 * rng.randn(N, A)).astype(np.float32)
        np.save(os.path.join(outdir, "augment.npy"), aug)
        files["augment.npy"] = "augment labels (N,augment_dim) float32"

    tx, ts = torch.from_numpy(x), torch.from_numpy(sigma)
    tl = torch.from_numpy(labels) if labels is not None else None
    kw = {"augment_labels": torch.from_numpy(aug)} if aug is not None else {}
    with torch.no_grad():
        D = net(tx, ts, tl, **kw).float().numpy()
        np.save(os.path.join(outdir, "D.npy"), D)
        files["D.npy"] = "net(x, sigma, labels, augment_labels=augment) (N,C,R,R) float32"
        if case.get("nolabels"):
            np.save(os.path.join(outdir, "D_nolabels.npy"), net(tx, ts, None, **kw).float().numpy())
            files["D_nolabels.npy"] = "net(x, sigma, None, augment_labels=augment)"
        if case.get("noaug"):
            np.save(os.path.join(outdir, "D_noaug.npy"), net(tx, ts, tl).float().numpy())
            files["D_noaug.npy"] = "net(x, sigma, labels) without augment_labels"
    if case.get("acts"):
        kw1 = {k: v[:1] for k, v in kw.items()}
        acts = capture_acts(net, torch, (tx[:1], ts[:1], tl[:1] if tl is not None else None), kw1)
        os.makedirs(os.path.join(outdir, "act"), exist_ok=True)
        for name, a in acts.items():
            np.save(os.path.join(outdir, "act", name + ".npy"), a)
        files["act/"] = "per-module activations of net(x[:1], sigma[:1], labels[:1], augment[:1])"
    return files, float(np.abs(D).max())


def make_sample(sc, net, outdir, torch, generate, models_by_name):
    mcase = models_by_name[sc["model"]]
    rng = np.random.RandomState(2000 + sc["seed"])
    N, C, R, L = 2, mcase["ch"], mcase["res"], mcase["label_dim"]
    steps = sc["kwargs"]["num_steps"]
    latents = rng.randn(N, C, R, R).astype(np.float32)
    noise = rng.randn(steps, N, C, R, R).astype(np.float32)
    np.save(os.path.join(outdir, "latents.npy"), latents)
    np.save(os.path.join(outdir, "noise.npy"), noise)
    labels = None
    if L:
        labels = np.eye(L, dtype=np.float32)[rng.randint(L, size=N)]
        np.save(os.path.join(outdir, "labels.npy"), labels)

    calls = []

    def randn_like(x):
        i = len(calls)
        calls.append(i)
        assert tuple(x.shape) == noise.shape[1:]
        return torch.from_numpy(noise[i]).to(x.dtype)

    sigmas = []
    h = net.register_forward_pre_hook(lambda m, inp: sigmas.append(float(torch.as_tensor(inp[1]).double().reshape(-1)[0])))
    fn = generate.edm_sampler if sc["sampler"] == "edm" else generate.ablation_sampler
    kwargs = {k: v for k, v in sc["kwargs"].items()}
    tlat = torch.from_numpy(latents)
    tlab = torch.from_numpy(labels) if labels is not None else None
    try:
        with torch.no_grad():
            x = fn(net, tlat, tlab, randn_like=randn_like, **kwargs)
    finally:
        h.remove()
    nfe = len(sigmas)
    assert len(calls) == steps, (len(calls), steps)

    # Sensitivity: the same run with every denoiser output perturbed by 1e-6 of its RMS, a proxy
    # for the fp32 rounding differences between two correct implementations. Recorded as a
    # tolerance hint; a random-weight network can amplify such differences a lot.
    calls.clear()
    pgen = torch.Generator().manual_seed(sc["seed"])
    h = net.register_forward_hook(
        lambda m, inp, out: out + 1e-6 * out.pow(2).mean().sqrt() * torch.randn(out.shape, generator=pgen))
    try:
        with torch.no_grad():
            xp = fn(net, tlat, tlab, randn_like=randn_like, **kwargs)
    finally:
        h.remove()
    sens = float((xp - x).abs().max() / x.abs().max())
    assert len(calls) == steps, (len(calls), steps)
    assert x.dtype == torch.float64
    u8 = (x * 127.5 + 128).clip(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.save(os.path.join(outdir, "x.npy"), x.numpy())
    np.save(os.path.join(outdir, "u8.npy"), u8)
    np.save(os.path.join(outdir, "net_sigmas.npy"), np.array(sigmas, dtype=np.float64))
    params = {"kind": "sample", "model": sc["model"], "sampler": sc["sampler"], "N": N}
    params.update(sc["kwargs"])
    params["nfe"] = nfe
    params["x_max_abs"] = float(x.abs().max())
    params["x_perturbed_rel"] = sens
    params["covers"] = sc["covers"]
    write_json(os.path.join(outdir, "params.json"), params)
    return nfe, float(x.abs().max()), sens


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="path of the NVlabs/edm checkout")
    ap.add_argument("--out", required=True, help="output directory (tests/vectors)")
    ap.add_argument("--only", default=None, help="comma-separated case names (default: all)")
    args = ap.parse_args()

    networks, _loss, generate = official.import_official(args.official)
    import torch
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    only = set(args.only.split(",")) if args.only else None
    os.makedirs(args.out, exist_ok=True)
    models_by_name = {m["name"]: m for m in MODELS}
    nets = {}
    index = {"generator": "tools/refgen/make_vectors.py", "official_commit": "008a4e5",
             "torch": torch.__version__, "numpy": np.__version__, "denoise": [], "sample": []}

    def get_net(case):
        if case["name"] not in nets:
            net = official.build(networks, case["precond"], case["res"], case["ch"], case["label_dim"],
                                 precond_kwargs=case.get("precond_kwargs"), model_type=case["model_type"],
                                 model_kwargs=case["model_kwargs"], seed=case["seed"])
            if case["precond"] == "iddpm":
                check_iddpm_rounding(net, torch)
            nets[case["name"]] = net
        return nets[case["name"]]

    for case in MODELS:
        index["denoise"].append({"name": case["name"], "covers": case["covers"]})
        if only and case["name"] not in only:
            continue
        net = get_net(case)
        outdir = os.path.join(args.out, case["name"])
        shutil.rmtree(outdir, ignore_errors=True)
        os.makedirs(outdir)
        meta = {"name": case["name"], "description": "random-weight test model: " + case["covers"],
                "licence": "test data, generated", "generator": "tools/refgen/make_vectors.py"}
        edmfile.write_model(os.path.join(outdir, "model.safetensors"), official.state_tensors(net),
                            official.official_config(net), meta, dtype=case.get("dtype", "F32"))
        check_exact(net, case.get("dtype", "F32"), torch)
        files, dmax = make_denoise(case, net, outdir, torch)
        files["model.safetensors"] = "the model (official state_dict, edm_config)"
        write_json(os.path.join(outdir, "case.json"), {
            "kind": "denoise", "name": case["name"], "covers": case["covers"],
            "N": len(DENOISE_SIGMAS), "tensors": len(net.state_dict()),
            "params": sum(p.numel() for p in net.parameters()), "files": files})
        print("%-40s %3d tensors %8d params  max|D| %.3g" % (case["name"], len(net.state_dict()),
              sum(p.numel() for p in net.parameters()), dmax))

    for sc in SAMPLES:
        index["sample"].append({"name": sc["name"], "model": sc["model"], "covers": sc["covers"]})
        if only and sc["name"] not in only:
            continue
        net = get_net(models_by_name[sc["model"]])
        outdir = os.path.join(args.out, sc["name"])
        shutil.rmtree(outdir, ignore_errors=True)
        os.makedirs(outdir)
        nfe, xmax, sens = make_sample(sc, net, outdir, torch, generate, models_by_name)
        print("%-40s NFE %3d  max|x| %8.3g  perturbed rel %.2g" % (sc["name"], nfe, xmax, sens))

    if not only:
        write_json(os.path.join(args.out, "index.json"), index)


if __name__ == "__main__":
    main()
