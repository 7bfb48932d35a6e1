"""Check train.py's export path: model file contents, F16 round trip and (optionally) the C engine.

    /usr/bin/python3 tools/train/test_export.py [--edm build/edm]

Builds the bundled MNIST architecture with randomised weights, writes it with train.export_model (F16),
and checks: the file's tensor names/order equal our state_dict, the config/metadata are complete, the
reloaded network (sample.load_model_file) equals the network with F16-rounded weights, and the PNG
writer/reader round trip. With --edm PATH it also runs `edm denoise` of the C engine on the file and
compares with torch (fp32, same F16-rounded weights): max |diff| <= 1e-4 * max |D|.
Ends with "N passed, N failed, N skipped".
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import edmfile  # noqa: E402
import sample as edm_sample  # noqa: E402
import train  # noqa: E402
from test_model import randomise  # noqa: E402

PASSED = FAILED = SKIPPED = 0


def check(ok, what):
    global PASSED, FAILED
    PASSED += bool(ok)
    FAILED += not ok
    print("%s %s" % ("ok  " if ok else "FAIL", what))


def main():
    global SKIPPED
    ap = argparse.ArgumentParser()
    ap.add_argument("--edm", default=None, help="path of the C engine's edm command")
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tmp = tempfile.mkdtemp(prefix="edm-train-test-")
    path = os.path.join(tmp, "m.safetensors")

    targs = train.parse_args(["--out", path])
    mkw = train.model_kwargs_from_args(targs)
    torch.manual_seed(0)
    net = train.edm_model.EDMPrecond(32, 1, 10, **mkw).eval()
    randomise(net, torch.Generator().manual_seed(1))
    info = {"steps": 1, "final_loss": 0.5}
    train.export_model(path, net, targs, mkw, info, "F16")
    tensors, cfg, meta = edmfile.read_model(path)
    check(list(tensors.keys()) == list(net.state_dict().keys()), "file tensor names/order = state_dict (%d)" % len(tensors))
    check(all(v.dtype == np.float16 for v in tensors.values()), "all tensors stored as F16")
    check(cfg["precond"] == "edm" and cfg["model_type"] == "SongUNet" and cfg["label_dim"] == 10
          and cfg["img_resolution"] == 32 and cfg["img_channels"] == 1
          and cfg["model_kwargs"]["channel_mult"] == [1, 2, 2], "edm_config")
    check(all(k in meta for k in ("name", "description", "license", "training_data", "training", "sampler",
                                  "default_steps", "class_names")) and meta["name"] == "mnist-edm"
          and json.loads(meta["class_names"])[7] == ["7", "seven"]
          and json.loads(meta["training"])["steps"] == 1 and json.loads(meta["sampler"])["num_steps"] == 18,
          "metadata keys")
    check(os.path.getsize(path) < 4_000_000, "file size %.2f MB < 4 MB" % (os.path.getsize(path) / 1e6))

    # Reloaded net == net with F16-rounded weights.
    net16, _ = edm_sample.load_model_file(path)
    ref = train.edm_model.EDMPrecond(32, 1, 10, **mkw).eval()
    ref.load_state_dict({k: v.half().float() for k, v in net.state_dict().items()})
    g = torch.Generator().manual_seed(2)
    x = torch.randn([6, 1, 32, 32], generator=g)
    sig = torch.tensor([0.002, 0.05, 0.5, 2.0, 20.0, 80.0])
    lab = torch.nn.functional.one_hot(torch.tensor([0, 3, 5, 7, 9, 1]), 10).float()
    x = x * sig.reshape(-1, 1, 1, 1) + torch.randn([6, 1, 32, 32], generator=g).clamp(-1, 1)
    with torch.no_grad():
        d16 = net16(x, sig, lab)
        dref = ref(x, sig, lab)
    check(torch.equal(d16, dref), "reloaded file == F16-rounded weights")

    # PNG round trip.
    img = (np.arange(32 * 40) % 251).astype(np.uint8).reshape(32, 40)
    edm_sample.write_png_gray(os.path.join(tmp, "a.png"), img)
    check(np.array_equal(edm_sample.read_png(os.path.join(tmp, "a.png")), img), "PNG write/read round trip")

    if args.edm:
        np.save(os.path.join(tmp, "x.npy"), x.numpy().astype(np.float32))
        np.save(os.path.join(tmp, "s.npy"), sig.numpy().astype(np.float32))
        np.save(os.path.join(tmp, "l.npy"), lab.numpy().astype(np.float32))
        cmd = [args.edm, "denoise", "--model", path, "--x", os.path.join(tmp, "x.npy"), "--sigma",
               os.path.join(tmp, "s.npy"), "--class-labels", os.path.join(tmp, "l.npy"), "--out",
               os.path.join(tmp, "d.npy"), "--backend", "cpu"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            check(False, "edm denoise ran: %s" % (r.stderr.strip()[-300:],))
        else:
            dc = np.load(os.path.join(tmp, "d.npy"))
            err = float(np.abs(dc - dref.numpy()).max() / np.abs(dref.numpy()).max())
            check(err <= 1e-4, "C engine edm denoise == torch on the exported file, max rel err %.2e" % err)
        # Same latents through the C sampler and sample.edm_sampler (deterministic, 18 steps).
        z = torch.randn([2, 1, 32, 32], generator=g)
        lab2 = torch.nn.functional.one_hot(torch.tensor([4, 8]), 10).float()
        np.save(os.path.join(tmp, "z.npy"), z.numpy())
        np.save(os.path.join(tmp, "l2.npy"), lab2.numpy())
        cmd = [args.edm, "sample", "--model", path, "--latents", os.path.join(tmp, "z.npy"), "--class-labels",
               os.path.join(tmp, "l2.npy"), "--out", os.path.join(tmp, "xs.npy"), "--png-dir",
               os.path.join(tmp, "png"), "--backend", "cpu"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            check(False, "edm sample ran: %s" % (r.stderr.strip()[-300:],))
        else:
            xc = np.load(os.path.join(tmp, "xs.npy"))
            xt = edm_sample.edm_sampler(net16, z, lab2).float().numpy()
            err = float(np.abs(xc - xt).max())
            check(err <= 1e-3, "C engine edm sample == sample.edm_sampler (same latents), max abs err %.2e" % err)
            pngs = sorted(os.listdir(os.path.join(tmp, "png")))
            imgs = [edm_sample.read_png(os.path.join(tmp, "png", p)) for p in pngs]
            check(len(imgs) == 2 and all(np.array_equal(i, edm_sample.to_uint8(xc[k, 0])) for k, i in enumerate(imgs)),
                  "read_png(engine PNGs) == to_uint8(engine x)")
    else:
        SKIPPED += 1
        print("skipped: C engine comparison (no --edm given)")
    print("%d passed, %d failed, %d skipped" % (PASSED, FAILED, SKIPPED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
