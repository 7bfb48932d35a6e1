"""Judge generated MNIST digits: class accuracy and a Frechet distance in a digit classifier's feature space.

Given generated 32x32 digits and the classes they were asked for, this
  1. trains the small CNN of classifier.py (fixed seed) on the 9,000 training digits and measures its
     accuracy on the 1,000 held-out digits (i % 10 == 9; the file is sorted by class, so this takes about
     100 of each class), the reference: what "perfect" digits would score;
  2. classifies the generated digits and reports the fraction classified as the requested class, per class
     and overall;
  3. reports the Frechet distance (FD) between the generated digits and the 1,000 held-out real digits in
     the classifier's 128-d penultimate-layer features, next to a floor: the FD between the same number
     of real *training* digits and the held-out digits (the FD of a perfect generator at this sample size).

Inputs (each --samples entry is one of):
  * an .npy of x, float32 in [-1, 1], shape (N,1,32,32) or (N,32,32) (e.g. `build/edm sample --out x.npy`),
    or uint8 (0..255) of the same shapes;
  * a folder of PNG files (8-bit grey or RGB, 32x32), read in sorted name order.
  The requested classes come from --labels (one .npy per --samples entry: (N,) integers or (N,10) one-hot),
  or --class (one class per --samples entry). A --samples path containing "{class}" stands for ten
  paths, class 0..9, and needs neither.

    /usr/bin/python3 tools/train/evaluate.py --samples x.npy --labels labels.npy
    /usr/bin/python3 tools/train/evaluate.py --samples 'out/class{class}.npy'
    /usr/bin/python3 tools/train/evaluate.py --samples c0.npy c1.npy ... --class 0 1 ...
    options:  --data DIR (default: $EDM_MNIST_DATA, else ../shared/data beside the checkout)  --device cpu  --seed 0  --json report.json

The classifier is retrained on every run (about a minute on 2 CPU cores); nothing binary is stored.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import classifier  # noqa: E402
from sample import read_png  # noqa: E402


def load_samples(path):
    """-> float32 (N,1,32,32) in [-1, 1]."""
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(".png"))
        if not names:
            raise ValueError("%s: no .png files" % path)
        arr = np.stack([read_png(os.path.join(path, n)) for n in names])
    else:
        arr = np.load(path)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or arr.shape[1:] != (32, 32):
        raise ValueError("%s: expected (N,1,32,32) or (N,32,32) digits, got %s" % (path, arr.shape))
    if arr.dtype == np.uint8:
        x = arr.astype(np.float32) / 127.5 - 1.0
    else:
        x = arr.astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError("%s: non-finite values" % path)
        x = np.clip(x, -1.0, 1.0)
    return x[:, None]


def load_labels(path, n):
    lab = np.load(path)
    if lab.ndim == 2:
        lab = lab.argmax(axis=1)
    lab = lab.astype(np.int64).reshape(-1)
    if len(lab) != n:
        raise ValueError("%s: %d labels for %d samples" % (path, len(lab), n))
    if lab.min() < 0 or lab.max() > 9:
        raise ValueError("%s: labels outside 0..9" % path)
    return lab


def frechet_distance(f1, f2):
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), numpy only (eigen-decompositions, fp64)."""
    f1 = np.asarray(f1, dtype=np.float64)
    f2 = np.asarray(f2, dtype=np.float64)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1 = np.cov(f1, rowvar=False)
    s2 = np.cov(f2, rowvar=False)
    # Tr (S1 S2)^(1/2) = Tr (A S2 A)^(1/2) with A = S1^(1/2); A S2 A is symmetric PSD.
    w, v = np.linalg.eigh(s1)
    a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = a @ s2 @ a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def evaluate(x, labels, data_dir, device="cpu", seed=0, log=print, clf=None, epochs=6):
    """x: float32 (N,1,32,32) in [-1,1]; labels: (N,) int. Returns a JSON-able report dict."""
    t0 = time.time()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    x = np.clip(x, -1, 1)
    labels = np.asarray(labels, dtype=np.int64)
    if clf is None:
        clf, heldout_acc = classifier.train_classifier(data_dir, device, seed, epochs=epochs, log=log)
    else:
        heldout_acc = None
    (xtr, _), (xte, yte) = classifier.split(data_dir)
    if heldout_acc is None:
        heldout_acc = float((classifier.predict(clf, xte, device) == yte).mean())
    pred = classifier.predict(clf, x, device)
    per_class = {}
    for k in range(10):
        m = labels == k
        if m.any():
            per_class[str(k)] = {"n": int(m.sum()), "accuracy": float((pred[m] == k).mean())}
    f_gen = classifier.features(clf, x, device)
    f_real = classifier.features(clf, xte, device)
    rng = np.random.RandomState(seed)
    n_floor = min(len(x), len(xtr))
    f_train = classifier.features(clf, xtr[rng.choice(len(xtr), n_floor, replace=False)], device)
    return {
        "n_samples": int(len(x)),
        "accuracy": float((pred == labels).mean()),
        "per_class": per_class,
        "classifier_heldout_accuracy": heldout_acc,
        "fd_generated_vs_heldout": frechet_distance(f_gen, f_real),
        "fd_real_train_vs_heldout": frechet_distance(f_train, f_real),
        "fd_n_real": int(len(xte)),
        "fd_n_floor": int(n_floor),
        "seconds": round(time.time() - t0, 1),
        "split": "held out: digits i with i % 10 == 9 (1,000, ~100 per class); classifier and diffusion "
                 "model trained on the other 9,000; FD reference = the held-out 1,000",
    }


def format_report(r):
    lines = ["generated digits classified as the requested class: %.4f (%d samples)" % (r["accuracy"], r["n_samples"]),
             "  per class: " + "  ".join("%s:%.3f" % (k, v["accuracy"]) for k, v in sorted(r["per_class"].items())),
             "classifier accuracy on the held-out real digits: %.4f" % r["classifier_heldout_accuracy"],
             "FD (classifier features) generated vs held-out real: %.3f" % r["fd_generated_vs_heldout"],
             "FD floor, %d real training digits vs held-out real: %.3f" % (r["fd_n_floor"], r["fd_real_train_vs_heldout"])]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", nargs="+", required=True)
    ap.add_argument("--labels", nargs="+", default=None)
    ap.add_argument("--class", dest="classes", nargs="+", type=int, default=None)
    ap.add_argument("--data", default=classifier.DATA_DEFAULT)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the report here")
    ap.add_argument("--clf-epochs", type=int, default=6, help="classifier training epochs (6; fewer for tests)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    xs, ls = [], []
    expanded = []
    for i, p in enumerate(args.samples):
        if "{class}" in p:
            expanded += [(p.replace("{class}", str(k)), None, k) for k in range(10)]
        else:
            lab = args.labels[i] if args.labels and i < len(args.labels) else None
            cls = args.classes[i] if args.classes and i < len(args.classes) else None
            if lab is None and cls is None:
                ap.error("%s: give --labels or --class for it (or use a {class} pattern)" % p)
            expanded.append((p, lab, cls))
    for p, lab, cls in expanded:
        x = load_samples(p)
        xs.append(x)
        ls.append(load_labels(lab, len(x)) if lab else np.full(len(x), cls, dtype=np.int64))
        print("loaded %s: %d digits" % (p, len(x)), flush=True)
    x = np.concatenate(xs)
    labels = np.concatenate(ls)
    if len(x) < 1000:
        print("note: %d samples; the task asks for at least 1,000 (FD is biased upward for few samples)" % len(x))
    rep = evaluate(x, labels, args.data, args.device, args.seed, epochs=args.clf_epochs)
    print(format_report(rep), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
