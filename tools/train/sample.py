"""Sampling and image helpers for the training tools (torch + numpy + stdlib only).

* edm_sampler(net, latents, class_labels, num_steps=18, ...): the deterministic EDM Heun sampler
  (spec 3.1, Algorithm 2 with S_churn = 0), fp64 outside the network, last step Euler (NFE = 2N - 1).
* load_model_file(path) -> EDMPrecond: builds tools/train/model.py's network from an edm-safetensors/1
  file (SongUNet + EDM preconditioner only) and loads its weights (F16 files are widened to fp32).
* to_uint8(x): the official conversion trunc(clip(x*127.5 + 128, 0, 255)) (spec 3.3).
* write_png_gray / read_png / image_grid: a minimal PNG writer (8-bit grey) and reader (8-bit grey, grey+alpha,
  RGB, RGBA; non-interlaced), so no imaging library is needed.

As a command, samples a class-by-class grid (and optionally an .npy) from a model file:

    /usr/bin/python3 tools/train/sample.py --model models/mnist-edm.safetensors --per-class 10 \
        --grid grid.png [--npy x.npy] [--device cpu] [--steps 18] [--seed 0]
"""

import argparse
import os
import struct
import sys
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import model as edm_model  # noqa: E402


def edm_time_steps(num_steps=18, sigma_min=0.002, sigma_max=80.0, rho=7.0, device="cpu"):
    """t_0..t_{N-1} by the rho formula, then t_N = 0; fp64 (spec 3.1 step 2)."""
    if num_steps < 2:
        raise ValueError("num_steps must be >= 2")
    i = torch.arange(num_steps, dtype=torch.float64, device=device)
    t = (sigma_max ** (1 / rho) + i / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([t, torch.zeros(1, dtype=torch.float64, device=device)])


@torch.no_grad()
def edm_sampler(net, latents, class_labels=None, num_steps=18, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """Deterministic EDM sampler: Heun steps, Euler on the last one. Returns fp64 x."""
    sigma_min = max(sigma_min, float(net.sigma_min))
    sigma_max = min(sigma_max, float(net.sigma_max))
    t_steps = edm_time_steps(num_steps, sigma_min, sigma_max, rho, device=latents.device)
    x_next = latents.to(torch.float64) * t_steps[0]
    for i in range(num_steps):
        t_cur, t_next = t_steps[i], t_steps[i + 1]
        x_cur = x_next
        d_cur = (x_cur - net(x_cur, t_cur, class_labels).to(torch.float64)) / t_cur
        x_next = x_cur + (t_next - t_cur) * d_cur
        if i < num_steps - 1:
            d_prime = (x_next - net(x_next, t_next, class_labels).to(torch.float64)) / t_next
            x_next = x_cur + (t_next - t_cur) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


def sample_classes(net, classes, seeds, device, num_steps=18, batch=1000):
    """One image per (class, seed) pair; latents from torch.Generator(device='cpu').manual_seed(seed)."""
    classes = np.asarray(classes, dtype=np.int64)
    seeds = np.asarray(seeds, dtype=np.int64)
    R, C, L = net.img_resolution, net.img_channels, net.label_dim
    out = []
    for b in range(0, len(classes), batch):
        cl = classes[b:b + batch]
        lat = torch.stack([torch.randn([C, R, R], generator=torch.Generator().manual_seed(int(s)))
                           for s in seeds[b:b + batch]]).to(device)
        labels = torch.nn.functional.one_hot(torch.as_tensor(cl, device=device), L).float() if L else None
        out.append(edm_sampler(net, lat, labels, num_steps=num_steps).float().cpu())
    return torch.cat(out).numpy()


def to_uint8(x):
    """float [-1, 1] -> uint8 exactly as the official generate.py does."""
    return np.clip(np.asarray(x, dtype=np.float32) * 127.5 + 128, 0, 255).astype(np.uint8)


def image_grid(images, ncol, pad=2, background=0):
    """(N, H, W) uint8 -> one (rows*(H+pad)+pad, ncol*(W+pad)+pad) uint8 grid."""
    images = np.asarray(images)
    n, h, w = images.shape
    nrow = (n + ncol - 1) // ncol
    g = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad), background, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        g[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = images[i]
    return g


def _chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png_gray(path, img):
    """Write a (H, W) uint8 array as an 8-bit greyscale PNG."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) \
        + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(png)
    os.replace(tmp, path)


def read_png(path):
    """Read an 8-bit non-interlaced PNG (grey, grey+alpha, RGB, RGBA) -> (H, W) uint8 (colour -> mean)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s: not a PNG file" % path)
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if tag == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            break
    if hdr is None:
        raise ValueError("%s: no IHDR" % path)
    w, h, depth, ctype, _, _, interlace = hdr
    chans = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or chans is None or interlace:
        raise ValueError("%s: only 8-bit non-interlaced grey/RGB(A) PNGs are supported" % path)
    raw = zlib.decompress(b"".join(idat))
    stride = w * chans
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 2:
            cur = (line + prev) & 255
        else:
            cur = np.zeros(stride, dtype=np.int32)
            for i in range(stride):
                a = cur[i - chans] if i >= chans else 0
                b = prev[i]
                c = prev[i - chans] if i >= chans else 0
                if ftype == 1:
                    p = a
                elif ftype == 3:
                    p = (a + b) >> 1
                elif ftype == 4:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                else:
                    raise ValueError("%s: bad filter type %d" % (path, ftype))
                cur[i] = (line[i] + p) & 255
        out[y] = cur
        prev = cur
    img = out.reshape(h, w, chans)
    if chans in (1, 2):
        return img[:, :, 0].copy()
    return np.round(img[:, :, :3].astype(np.float32).mean(axis=2)).astype(np.uint8)


def load_model_file(path, device="cpu"):
    """edm-safetensors/1 file (EDM precond, SongUNet) -> EDMPrecond in eval mode with its weights."""
    import edmfile  # tools/edmfile.py
    tensors, cfg, meta = edmfile.read_model(path)
    if cfg is None or cfg.get("precond") != "edm" or cfg.get("model_type") != "SongUNet":
        raise ValueError("%s: only EDMPrecond + SongUNet files are supported here" % path)
    pk = dict(cfg["precond_kwargs"])
    net = edm_model.EDMPrecond(img_resolution=cfg["img_resolution"], img_channels=cfg["img_channels"],
                               label_dim=cfg["label_dim"], use_fp16=cfg["use_fp16"],
                               sigma_min=pk["sigma_min"], sigma_max=pk["sigma_max"],
                               sigma_data=pk["sigma_data"], **dict(cfg["model_kwargs"]))
    sd = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in tensors.items()}
    net.load_state_dict(sd, strict=True)
    return net.eval().requires_grad_(False).to(device), meta


def main():
    ap = argparse.ArgumentParser(description="Sample a class grid from an EDM model file with torch.")
    ap.add_argument("--model", required=True)
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--steps", type=int, default=18)
    ap.add_argument("--seed", type=int, default=0, help="first seed; image j of each class uses seed+j")
    ap.add_argument("--grid", default=None, help="PNG grid, one row per class")
    ap.add_argument("--npy", default=None, help="write x as (N,C,R,R) float32 (class-major order)")
    ap.add_argument("--labels-npy", default=None, help="write the classes as (N,) int64")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    net, _ = load_model_file(args.model, args.device)
    L = max(net.label_dim, 1)
    classes = np.repeat(np.arange(L), args.per_class)
    seeds = np.tile(np.arange(args.per_class) + args.seed, L)
    x = sample_classes(net, classes if net.label_dim else np.zeros_like(classes), seeds, args.device, args.steps)
    if args.grid:
        write_png_gray(args.grid, image_grid(to_uint8(x[:, 0]), args.per_class))
        print("wrote %s" % args.grid)
    if args.npy:
        np.save(args.npy, x.astype(np.float32))
        print("wrote %s %s" % (args.npy, x.shape))
    if args.labels_npy:
        np.save(args.labels_npy, classes.astype(np.int64))


if __name__ == "__main__":
    main()
