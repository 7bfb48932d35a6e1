#!/usr/bin/python3
"""Check the committed reference vectors against the official code (needs torch).

    /usr/bin/python3 tools/refgen/check_vectors.py --official bench/official --vectors tests/vectors

For every denoise case: build a fresh official preconditioner from the file's edm_config alone
(so the config is proved complete), load the file's tensors with load_state_dict(strict=True)
(so names, order and shapes are exactly the official state_dict), and recompute D, D_nolabels,
D_noaug. For every sample case: rerun the official sampler with the stored latents, noise and
params and compare x, u8 and the sigmas the network was called with.
Prints "N passed, N failed, N skipped" last; exit status 1 on any failure.
"""

import argparse
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import official  # noqa: E402
import edmfile  # noqa: E402


def net_from_file(networks, path, torch):
    tensors, cfg, _meta = edmfile.read_model(path)
    cls = official.PRECOND_CLASS[cfg["precond"]]
    kwargs = dict(img_resolution=cfg["img_resolution"], img_channels=cfg["img_channels"],
                  label_dim=cfg["label_dim"], use_fp16=cfg["use_fp16"], model_type=cfg["model_type"])
    kwargs.update(cfg["precond_kwargs"])
    kwargs.update(cfg["model_kwargs"])
    net = getattr(networks, cls)(**kwargs)
    sd = net.state_dict()
    if list(sd.keys()) != list(tensors.keys()):
        raise AssertionError("tensor names/order differ from the official state_dict")
    net.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in tensors.items()},
                        strict=True)
    if cfg != official.official_config(net):
        raise AssertionError("edm_config differs from the rebuilt net's config")
    return net.eval().requires_grad_(False), cfg


def load(d, name):
    p = os.path.join(d, name)
    return np.load(p) if os.path.exists(p) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True)
    ap.add_argument("--vectors", required=True)
    args = ap.parse_args()
    networks, _loss, generate = official.import_official(args.official)
    import torch
    torch.set_num_threads(2)
    index = json.load(open(os.path.join(args.vectors, "index.json")))
    passed = failed = 0
    nets = {}

    def report(name, ok, msg=""):
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print("%s %s %s" % ("ok  " if ok else "FAIL", name, msg))

    for case in index["denoise"]:
        d = os.path.join(args.vectors, case["name"])
        try:
            net, cfg = net_from_file(networks, os.path.join(d, "model.safetensors"), torch)
            nets[case["name"]] = net
            x, sigma = torch.from_numpy(load(d, "x.npy")), torch.from_numpy(load(d, "sigma.npy"))
            lab, aug = load(d, "labels.npy"), load(d, "augment.npy")
            lab = torch.from_numpy(lab) if lab is not None else None
            kw = {"augment_labels": torch.from_numpy(aug)} if aug is not None else {}
            worst = 0.0
            with torch.no_grad():
                for fname, args_ in (("D.npy", (x, sigma, lab)), ("D_nolabels.npy", (x, sigma, None)),
                                     ("D_noaug.npy", (x, sigma, lab))):
                    ref = load(d, fname)
                    if ref is None:
                        continue
                    out = net(*args_, **({} if fname == "D_noaug.npy" else kw)).numpy()
                    err = float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))
                    worst = max(worst, err)
            report(case["name"], worst < 1e-5, "max rel err %.2g" % worst)
        except Exception as e:  # noqa: BLE001
            report(case["name"], False, "%s: %s" % (type(e).__name__, e))

    for sc in index["sample"]:
        d = os.path.join(args.vectors, sc["name"])
        try:
            p = json.load(open(os.path.join(d, "params.json")))
            net = nets[p["model"]]
            noise = load(d, "noise.npy")
            calls = []

            def randn_like(x):
                calls.append(1)
                return torch.from_numpy(noise[len(calls) - 1]).to(x.dtype)

            skip = {"kind", "model", "sampler", "N", "nfe", "x_max_abs", "x_perturbed_rel", "covers"}
            kwargs = {k: (math.inf if v == "inf" else v) for k, v in p.items() if k not in skip}
            fn = generate.edm_sampler if p["sampler"] == "edm" else generate.ablation_sampler
            lab = load(d, "labels.npy")
            sig = []
            h = net.register_forward_pre_hook(lambda m, inp: sig.append(float(inp[1])))
            with torch.no_grad():
                x = fn(net, torch.from_numpy(load(d, "latents.npy")),
                       torch.from_numpy(lab) if lab is not None else None, randn_like=randn_like, **kwargs)
            h.remove()
            ref = load(d, "x.npy")
            err = float(np.abs(x.numpy() - ref).max() / np.abs(ref).max())
            u8 = (x * 127.5 + 128).clip(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
            ok = (err < 1e-4 and np.array_equal(np.array(sig), load(d, "net_sigmas.npy"))
                  and int(np.abs(u8.astype(int) - load(d, "u8.npy").astype(int)).max()) <= 1)
            report(sc["name"], ok, "max rel err %.2g, nfe %d" % (err, len(sig)))
        except Exception as e:  # noqa: BLE001
            report(sc["name"], False, "%s: %s" % (type(e).__name__, e))

    print("%d passed, %d failed, 0 skipped" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
