#!/usr/bin/env python3
"""Inpainting quality on the bundled model: real held-out MNIST digits with their lower half
masked, repainted by `edm sample --init-image --mask` conditioned on their own class, judged by
the project's digit classifier (classifier.py) against the same digits unmasked.

    /usr/bin/python3 tools/train/inpaint_eval.py --per-class 10

Digits: the held-out split of classifier.py (i % 10 == 9; neither the classifier nor the
diffusion model saw them), the first --per-class of each class, prepared as train.py does
(28x28 padded by 2 with the background -1 to 32x32, [-1,1]). Mask: rows 16..31 of 32 (white =
repaint). Reported: classifier accuracy on the real digits, on the inpainted ones, and on the
masked input alone (lower half set to background: what is left without inpainting), plus the
mean absolute change of the known half (0: the mask guarantee).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import classifier  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=classifier.DATA_DEFAULT, help="folder with mnist_images.npy, mnist_labels.npy")
    ap.add_argument("--edm", default="build/edm")
    ap.add_argument("--model", default="models/mnist-edm.safetensors")
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--steps", type=int, default=18)
    ap.add_argument("--extra", default="", help="more `edm sample` options, e.g. '--resample-jump 3 --resample-count 3'")
    ap.add_argument("--clf-epochs", type=int, default=6)
    ap.add_argument("--json", default=None, help="also write the report here")
    a = ap.parse_args()

    _, (x, y) = classifier.split(a.data)
    pick = np.concatenate([np.flatnonzero(y == c)[:a.per_class] for c in range(10)])
    x, y = x[pick].astype(np.float32), y[pick]
    n = len(x)
    mask = np.zeros((1, 32, 32), np.float32)
    mask[:, 16:] = 1
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "init.npy"), x)
        np.save(os.path.join(tmp, "mask.npy"), mask)
        np.save(os.path.join(tmp, "labels.npy"), np.eye(10, dtype=np.float32)[y])
        cmd = [a.edm, "sample", "--model", a.model, "--seeds", "0-%d" % (n - 1), "--steps", str(a.steps),
               "--init-image", os.path.join(tmp, "init.npy"), "--mask", os.path.join(tmp, "mask.npy"),
               "--class-labels", os.path.join(tmp, "labels.npy"), "--out", os.path.join(tmp, "out.npy"),
               "--backend", "cpu"] + a.extra.split()
        t0 = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            sys.exit("edm sample failed: " + r.stderr.strip())
        dt = time.time() - t0
        nfe = [int(l.split(" nfe ")[1].split()[0]) for l in r.stdout.splitlines() if l.startswith("image ")]
        out = np.load(os.path.join(tmp, "out.npy"))
    masked = x.copy()
    masked[:, :, 16:] = -1
    net, held_acc = classifier.train_classifier(a.data, epochs=a.clf_epochs, log=lambda *s: None)
    acc = lambda v: float((classifier.predict(net, v) == y).mean())
    rep = {
        "digits": n, "steps": a.steps, "nfe_per_image": sorted(set(nfe)), "extra": a.extra,
        "sample_seconds": round(dt, 1),
        "classifier_heldout_accuracy": held_acc,
        "accuracy_real": acc(x), "accuracy_inpainted": acc(out), "accuracy_masked_only": acc(masked),
        "known_half_max_abs_change": float(np.abs(out[:, :, :16] - x[:, :, :16]).max()),
    }
    print("%d held-out digits, lower half inpainted with their own class (%d steps, NFE %s, %.0f s):"
          % (n, a.steps, rep["nfe_per_image"], dt))
    print("  classifier accuracy: real %.1f %%, inpainted %.1f %%, masked input alone %.1f %%"
          % (100 * rep["accuracy_real"], 100 * rep["accuracy_inpainted"], 100 * rep["accuracy_masked_only"]))
    print("  known half: max |change| %g" % rep["known_half_max_abs_change"])
    if a.json:
        json.dump(rep, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
