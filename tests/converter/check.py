#!/usr/bin/env python3
"""Checks used by test_converter.sh (numpy only, except `official`, which needs torch).

  check.py expected OUT.safetensors NAME.expected.json   names, order, shapes, SHA-256, config
  check.py f16 OUT32.safetensors OUT16.safetensors        F16 output == fp16(F32 output)
  check.py fake OUT.safetensors                           the hand-built fake_init_args.pkl result
  check.py official PKL OUT.safetensors OFFICIAL_DIR      tensors == official state_dict
                                                          (exit 77 when torch/official are absent)
Exit 0 when the check holds, 1 otherwise (with a message).
"""

import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import edmfile  # noqa: E402


def fail(msg):
    print("check: " + msg)
    sys.exit(1)


def expected(out, exp_path):
    tensors, cfg, meta = edmfile.read_model(out)
    exp = json.load(open(exp_path))
    got_cfg = json.loads(json.dumps(edmfile._encode_inf(cfg)))
    if got_cfg != exp["config"]:
        fail("config differs:\n got      %s\n expected %s" % (json.dumps(got_cfg), json.dumps(exp["config"])))
    names = list(tensors.keys())
    if names != [t[0] for t in exp["tensors"]]:
        fail("tensor names/order differ (got %d, expected %d)" % (len(names), len(exp["tensors"])))
    for name, shape, digest in exp["tensors"]:
        a = tensors[name]
        if list(a.shape) != shape:
            fail("%s: shape %s, expected %s" % (name, list(a.shape), shape))
        if a.dtype != np.float32:
            fail("%s: dtype %s" % (name, a.dtype))
        if hashlib.sha256(np.ascontiguousarray(a, dtype="<f4").tobytes()).hexdigest() != digest:
            fail("%s: values differ" % name)
    for key in ("name", "description", "source_file", "module_src_sha256"):
        if key not in meta:
            fail("metadata %s missing" % key)
    print("%d tensors and the config match" % len(names))


def f16(out32, out16):
    t32, c32, _ = edmfile.read_model(out32)
    t16, c16, _ = edmfile.read_model(out16)
    if c32 != c16 or list(t32) != list(t16):
        fail("F16 file differs in config or names")
    for k in t32:
        if k in edmfile.F32_BUFFERS:
            if t16[k].dtype != np.float32 or not np.array_equal(t16[k], t32[k]):
                fail("%s: should stay F32" % k)
        elif t16[k].dtype != np.float16 or not np.array_equal(t16[k], t32[k].astype(np.float16)):
            fail("%s: F16 values differ" % k)
    print("F16 output matches")


def fake(out):
    tensors, cfg, _ = edmfile.read_model(out)
    if list(tensors) != ["model.w"] or not np.array_equal(tensors["model.w"], np.array([[2, 4], [3, 5]], np.float32)):
        fail("tensor model.w wrong: %r" % (dict(tensors),))
    mk = cfg["model_kwargs"]
    if (cfg["precond"], cfg["model_type"], cfg["img_resolution"], cfg["img_channels"]) != ("edm", "SongUNet", 8, 3):
        fail("config header wrong: %r" % cfg)
    if mk["model_channels"] != 4 or mk["channel_mult"] != [1, 2] or mk["num_blocks"] != 4:
        fail("model_kwargs wrong: %r" % mk)
    if cfg["precond_kwargs"] != {"sigma_min": 0.0, "sigma_max": float("inf"), "sigma_data": 0.5}:
        fail("precond_kwargs wrong: %r" % cfg["precond_kwargs"])
    print("fake pickle converted as expected")


def official(pkl, out, official_dir):
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch not available")
        sys.exit(77)
    if not os.path.isfile(os.path.join(official_dir, "torch_utils", "persistence.py")):
        print("official code not found at %s" % official_dir)
        sys.exit(77)
    import pickle
    sys.path.insert(0, official_dir)
    with open(pkl, "rb") as f:  # our own generated pickle: trusted
        net = pickle.load(f)["ema"]
    sd = net.state_dict()
    tensors, cfg, _ = edmfile.read_model(out)
    if list(sd) != list(tensors):
        fail("names/order differ from the official state_dict")
    for k, v in sd.items():
        if not np.array_equal(v.numpy(), tensors[k]):
            fail("%s differs from the official state_dict" % k)
    for k in edmfile.PRECOND_DEFAULTS[cfg["precond"]]:
        if float(getattr(net, k)) != float(cfg["precond_kwargs"][k]):
            fail("precond %s: %r vs %r" % (k, getattr(net, k), cfg["precond_kwargs"][k]))
    for k in ("img_resolution", "img_channels", "label_dim", "use_fp16"):
        if getattr(net, k) != cfg[k]:
            fail("%s: %r vs %r" % (k, getattr(net, k), cfg[k]))
    print("%d tensors equal the official state_dict" % len(sd))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"expected": expected, "f16": f16, "fake": fake, "official": official}[cmd](*args)
