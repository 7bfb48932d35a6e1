#!/usr/bin/python3
"""A class-by-row grid PNG from `edm sample --out` files (numpy only).

    for k in 0 1 2 3 4 5 6 7 8 9; do
        build/edm sample --model models/mnist-edm.safetensors --seeds $((k*100))-$((k*100+99)) \\
            --class $k --out /tmp/eval/class$k.npy
    done
    /usr/bin/python3 tools/train/make_grid.py --samples '/tmp/eval/class{class}.npy' \\
        --per-class 10 --scale 2 --out models/mnist-grid.png

Row k holds the first images of class k; pixels are converted exactly as the official
generate.py does (clip(x*127.5+128, 0, 255), truncated).
"""
import argparse
import struct
import zlib

import numpy as np


def png_gray(img):
    h, w = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", required=True, help="path pattern with {class}")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--pad", type=int, default=2)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows = []
    for k in range(a.classes):
        x = np.load(a.samples.format(**{"class": k}))[: a.per_class, 0]
        rows.append(np.clip(x.astype(np.float32) * 127.5 + 128, 0, 255).astype(np.uint8))
    h, w = rows[0].shape[1:]
    H, W = h + a.pad, w + a.pad
    grid = np.zeros((a.classes * H + a.pad, a.per_class * W + a.pad), np.uint8)
    for r, imgs in enumerate(rows):
        for c, img in enumerate(imgs):
            grid[a.pad + r * H:a.pad + r * H + h, a.pad + c * W:a.pad + c * W + w] = img
    grid = np.kron(grid, np.ones((a.scale, a.scale), np.uint8))
    with open(a.out, "wb") as f:
        f.write(png_gray(grid))
    print(f"wrote {a.out}: {grid.shape[1]}x{grid.shape[0]}")


if __name__ == "__main__":
    main()
