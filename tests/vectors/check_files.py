#!/usr/bin/env python3
"""Integrity of tests/vectors and of tools/edmfile.py (numpy only; no torch).

For every case in index.json: the files exist with the shapes the README promises, given the
model's edm_config; every model file reads with tools/edmfile.py and re-writes byte-identically
(tensor order, dtype, header and metadata). Plus a few edmfile unit checks (fill_config defaults
and errors, inf, F16/BF16 rounding). Prints "N passed, N failed, N skipped" last.
"""

import json
import math
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import edmfile  # noqa: E402

passed = failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print("ok   " + name)
    except Exception as e:  # noqa: BLE001
        failed += 1
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e))


def load(d, f):
    p = os.path.join(d, f)
    return np.load(p) if os.path.exists(p) else None


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def rewrite_identical(path):
    tensors, cfg, meta = edmfile.read_model(path)
    dtypes = {v.dtype for v in tensors.values()}
    with open(path, "rb") as f:
        raw = f.read()
    hdr = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    dt = {v["dtype"] for k, v in hdr.items() if k != "__metadata__"}
    expect(len(dt) == 1, "mixed dtypes %s" % dt)
    dt = dt.pop()
    expect(dt != "F16" or dtypes == {np.dtype(np.float16)}, "F16 read dtype")
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as tmp:
        edmfile.write_model(tmp.name, list(tensors.items()), cfg, meta, dtype=dt)
        with open(tmp.name, "rb") as f:
            expect(f.read() == raw, "re-written file differs")
    return tensors, cfg


def denoise_case(d):
    def run():
        tensors, cfg = rewrite_identical(os.path.join(d, "model.safetensors"))
        expect(cfg["format"] == "edm-safetensors/1", "format")
        C, R, L = cfg["img_channels"], cfg["img_resolution"], cfg["label_dim"]
        A = cfg["model_kwargs"]["augment_dim"]
        x, sigma, D = load(d, "x.npy"), load(d, "sigma.npy"), load(d, "D.npy")
        N = sigma.shape[0]
        expect(x.shape == (N, C, R, R) and x.dtype == np.float32, "x shape/dtype")
        expect(sigma.dtype == np.float32 and D.shape == x.shape and D.dtype == np.float32, "sigma/D")
        lab, aug = load(d, "labels.npy"), load(d, "augment.npy")
        expect((lab is None) == (L == 0), "labels presence")
        expect(lab is None or (lab.shape == (N, L) and np.all(lab.sum(1) == 1)), "labels one-hot")
        expect((aug is None) == (A == 0), "augment presence")
        expect(aug is None or aug.shape == (N, A), "augment shape")
        for f in ("D_nolabels.npy", "D_noaug.npy"):
            a = load(d, f)
            expect(a is None or a.shape == x.shape, f)
        expect(np.all(np.isfinite(D)), "D finite")
        case = json.load(open(os.path.join(d, "case.json")))
        expect(case["tensors"] == len(tensors), "tensor count")
        if cfg["precond"] == "iddpm":
            expect(list(tensors)[0] == "u" and tensors["u"].shape == (cfg["precond_kwargs"]["M"] + 1,), "u")
        if os.path.isdir(os.path.join(d, "act")):
            emb = load(d, "act/emb.npy")
            mk = cfg["model_kwargs"]
            expect(emb.shape == (1, mk["model_channels"] * mk["channel_mult_emb"]), "emb shape")
            F = load(d, "act/F.npy")
            expect(F.shape == (1, C * (2 if cfg["precond"] == "iddpm" else 1), R, R), "F shape")
    return run


def sample_case(d, vectors):
    def run():
        p = json.load(open(os.path.join(d, "params.json")))
        _, cfg, _ = edmfile.read_model(os.path.join(vectors, p["model"], "model.safetensors"))
        C, R, L, N, S = cfg["img_channels"], cfg["img_resolution"], cfg["label_dim"], p["N"], p["num_steps"]
        expect(load(d, "latents.npy").shape == (N, C, R, R), "latents")
        expect(load(d, "noise.npy").shape == (S, N, C, R, R), "noise")
        lab = load(d, "labels.npy")
        expect((lab is None) == (L == 0) and (lab is None or lab.shape == (N, L)), "labels")
        x, u8 = load(d, "x.npy"), load(d, "u8.npy")
        expect(x.dtype == np.float64 and x.shape == (N, C, R, R), "x")
        expect(u8.dtype == np.uint8 and u8.shape == (N, R, R, C), "u8")
        ref = np.clip(x * 127.5 + 128, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
        expect(np.array_equal(ref, u8), "u8 != trunc(clip(x*127.5+128))")
        sig = load(d, "net_sigmas.npy")
        expect(sig.shape == (p["nfe"],), "net_sigmas")
        heun = p["sampler"] == "edm" or p.get("solver") == "heun"
        expect(p["nfe"] == (2 * S - 1 if heun else S), "nfe")
    return run


def edmfile_units():
    c = edmfile.fill_config("EDMPrecond", "SongUNet", 32, 3)
    expect(c["precond_kwargs"] == {"sigma_min": 0.0, "sigma_max": math.inf, "sigma_data": 0.5}, "edm defaults")
    expect(c["model_kwargs"]["channel_mult"] == [1, 2, 2, 2] and c["model_kwargs"]["resample_filter"] == [1, 1],
           "song defaults")
    expect(edmfile.fill_config("iddpm", None, 64, 3)["model_kwargs"]["attn_resolutions"] == [32, 16, 8],
           "dhariwal default model_type")
    for bad in (dict(embedding_type="x"), dict(bogus=1), dict(num_blocks=1.5)):
        try:
            edmfile.fill_config("vp", "SongUNet", 32, 3, model_kwargs=bad)
        except ValueError:
            continue
        raise AssertionError("fill_config accepted %r" % bad)
    vals = np.array([1.0, 1.00390625, 1.01171875, -3.3e4, 65504, 1e-8, np.inf, -0.0], np.float32)
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as tmp:
        edmfile.write_model(tmp.name, [("a", vals)], c, {"k": "v"}, dtype="BF16")
        t, c2, m = edmfile.read_model(tmp.name)
        # round to nearest even: 1+2^-8 -> 1, 1+3*2^-8 -> 1+2^-6
        expect(t["a"][0] == 1 and t["a"][1] == 1 and t["a"][2] == 1.015625, "bf16 rounding %r" % t["a"])
        expect(c2 == c and m == {"k": "v"}, "config/metadata round trip")
        raw = open(tmp.name, "rb").read()
        n = int.from_bytes(raw[:8], "little")
        expect(n % 8 == 0 and b'\\"sigma_max\\": \\"inf\\"' in raw[8:8 + n], "header padding / inf string")
        edmfile.write_model(tmp.name, [("a", vals)], c, dtype="F16")
        t, _, _ = edmfile.read_model(tmp.name)
        expect(np.array_equal(t["a"], vals.astype(np.float16)), "f16")
        for dt, big in (("F16", 7e4), ("BF16", 3.4e38)):
            try:
                edmfile.write_model(tmp.name, [("a", np.array([big], np.float32))], c, dtype=dt)
            except ValueError:
                continue
            raise AssertionError("%s overflow not refused" % dt)


def main():
    vectors = HERE
    index = json.load(open(os.path.join(vectors, "index.json")))
    check("edmfile units", edmfile_units)
    for c in index["denoise"]:
        check("denoise " + c["name"], denoise_case(os.path.join(vectors, c["name"])))
    for c in index["sample"]:
        check("sample " + c["name"], sample_case(os.path.join(vectors, c["name"]), vectors))
    print("%d passed, %d failed, 0 skipped" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
