"""A small CNN digit classifier for judging generated MNIST digits (32x32, 1 channel, [-1, 1]).

Split (shared with train.py's diffusion model, defined here by split_indices): mnist_images.npy is SORTED
BY CLASS (all 0s first, then all 1s, ...), so a first-9,000 / last-1,000 split would hold out only 9s and
never train on them. Instead digit i is held out iff i % 10 == 9: 1,000 held-out digits, about 100 of each
class, and 9,000 training digits. Neither the classifier nor the diffusion model ever sees the held-out
digits; they are also the "real" reference set for the Frechet distance in evaluate.py.

It is retrained from scratch on every evaluation (no weights are committed): fixed seed, about 1 minute on
2 CPU cores (seconds on a GPU). Training uses random shifts of up to 2 pixels so that the classifier does
not depend on exact centring.

Architecture: conv3x3(1->16)-ReLU-maxpool, conv3x3(16->32)-ReLU-maxpool, conv3x3(32->32)-ReLU-maxpool
(32 -> 16 -> 8 -> 4), flatten 512 -> Linear 128 -> ReLU (the 128-d "penultimate" features) ->
dropout 0.3 -> Linear 10.

    /usr/bin/python3 tools/train/classifier.py   # prints held-out accuracy
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# The MNIST sample (mnist_images.npy, mnist_labels.npy): $EDM_MNIST_DATA, else shared/data beside
# the checkout (where the project's shared material lies), never a path of one machine.
DATA_DEFAULT = os.environ.get("EDM_MNIST_DATA") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data"))
HELDOUT_EVERY = 10  # digit i is held out iff i % HELDOUT_EVERY == HELDOUT_EVERY - 1


def load_mnist32(data_dir):
    """(images float32 (N,1,32,32) in [-1,1], padded by 2 with the background value -1; labels int64 (N,))."""
    imgs = np.load(os.path.join(data_dir, "mnist_images.npy"))
    labels = np.load(os.path.join(data_dir, "mnist_labels.npy")).astype(np.int64)
    if imgs.ndim != 3 or imgs.shape[1:] != (28, 28) or imgs.dtype != np.uint8 or len(labels) != len(imgs):
        raise ValueError("%s: expected uint8 (N,28,28) images and (N,) labels" % data_dir)
    x = imgs.astype(np.float32) / 127.5 - 1.0
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    return x[:, None], labels


def split_indices(n):
    """(train indices, held-out indices) of an n-digit file: every 10th digit (i % 10 == 9) is held out.

    The data file is sorted by class, so this keeps about 10 % of each class out."""
    i = np.arange(n)
    held = i % HELDOUT_EVERY == HELDOUT_EVERY - 1
    return i[~held], i[held]


def split(data_dir):
    """((x_train, y_train), (x_heldout, y_heldout)) with x float32 (N,1,32,32) in [-1,1]."""
    x, y = load_mnist32(data_dir)
    tr, te = split_indices(len(x))
    return (x[tr], y[tr]), (x[te], y[te])


class DigitCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = torch.nn.Conv2d(32, 32, 3, padding=1)
        self.fc1 = torch.nn.Linear(32 * 4 * 4, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def features(self, x):
        """The 128-d penultimate-layer features (after ReLU)."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x):
        return self.fc2(F.dropout(self.features(x), 0.3, self.training))


def _random_shift(x, gen, max_shift=2):
    """Shift each image by up to max_shift pixels (background -1 fills in)."""
    n = x.shape[0]
    p = max_shift
    xp = F.pad(x, (p, p, p, p), value=-1.0)
    dx = torch.randint(0, 2 * p + 1, [n], generator=gen)
    dy = torch.randint(0, 2 * p + 1, [n], generator=gen)
    out = torch.empty_like(x)
    for sy in range(2 * p + 1):
        for sx in range(2 * p + 1):
            m = (dy == sy) & (dx == sx)
            if m.any():
                out[m] = xp[m, :, sy:sy + x.shape[2], sx:sx + x.shape[3]]
    return out


def train_classifier(data_dir, device="cpu", seed=0, epochs=6, batch=128, log=print):
    """Train on the 9,000 training digits; return (model in eval mode, held-out accuracy)."""
    (xtr, ytr), (xte, yte) = split(data_dir)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = DigitCNN().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    steps_per_epoch = (len(xtr) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * steps_per_epoch)
    xtr_t = torch.from_numpy(xtr)
    ytr_t = torch.from_numpy(ytr)
    t0 = time.time()
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for b in range(steps_per_epoch):
            idx = perm[b * batch:(b + 1) * batch]
            xb = _random_shift(xtr_t[idx], gen).to(device)
            yb = ytr_t[idx].to(device)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log:
            log("classifier epoch %d/%d  loss %.4f  (%.0f s)" % (ep + 1, epochs, total / len(xtr), time.time() - t0))
    net.eval()
    acc = float((predict(net, xte, device) == yte).mean())
    return net, acc


@torch.no_grad()
def predict(net, x, device="cpu", batch=500):
    out = []
    for b in range(0, len(x), batch):
        out.append(net(torch.as_tensor(x[b:b + batch], dtype=torch.float32, device=device)).argmax(1).cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def features(net, x, device="cpu", batch=500):
    out = []
    for b in range(0, len(x), batch):
        out.append(net.features(torch.as_tensor(x[b:b + batch], dtype=torch.float32, device=device)).double().cpu())
    return torch.cat(out).numpy()


def main():
    ap = argparse.ArgumentParser(description="Train the digit classifier and print its held-out accuracy.")
    ap.add_argument("--data", default=DATA_DEFAULT)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    _, acc = train_classifier(args.data, args.device, args.seed, args.epochs)
    print("held-out accuracy (1,000 digits, i %% 10 == 9): %.4f" % acc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
