#!/usr/bin/env python3
"""img2img_check.py - helpers of test_img2img.sh (pngs: stdlib; the others numpy, and
cli_check.py's PNG reader).

  pngs DIR                  writes DIR/digit.png (32x32 gray, a ring), DIR/mask.png (lower
                            half white), DIR/big.png (the digit at 96x96), DIR/rgb.png,
                            DIR/mask_alpha.png (OpenAI's kind: RGBA, the lower half
                            transparent), DIR/digit_alpha.png (the digit as RGBA whose lower
                            half is transparent), DIR/black.png (nothing to repaint) and
                            DIR/noise64.png (64x64 RGB noise: the largest input to expect)
  text PNG KEY              prints the tEXt value of KEY
  known X.npy DIGIT.png     the upper half of every image equals the PNG's pixels exactly
  near X.npy DIGIT.png L    every image's uint8 pixels are within L levels of the PNG's
  same A.npy B.npy TOL      max |A - B| <= TOL (0: bit-identical)
"""
import random
import struct
import sys
import zlib


def write_png(path, w, h, rows, color=0):
    def chunk(k, d):
        return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
    open(path, "wb").write(data + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def digit():
    rows = []
    for y in range(32):
        row = []
        for x in range(32):
            r2 = (x - 15.5) ** 2 + (y - 15.5) ** 2
            row.append(230 if 36 <= r2 <= 100 else 3)
        rows.append(row)
    return rows


def main():
    cmd = sys.argv[1]
    if cmd == "pngs":
        d = sys.argv[2]
        rows = digit()
        write_png(d + "/digit.png", 32, 32, rows)
        write_png(d + "/mask.png", 32, 32, [[0] * 32 if y < 16 else [255] * 32 for y in range(32)])
        write_png(d + "/big.png", 96, 96, [[v for v in rows[y // 3] for _ in range(3)] for y in range(96)])
        write_png(d + "/rgb.png", 32, 32, [[c for v in r for c in (v, v, v)] for r in rows], color=2)
        write_png(d + "/mask_alpha.png", 32, 32,
                  [[c for _ in range(32) for c in (0, 0, 0, 255 if y < 16 else 0)] for y in range(32)], color=6)
        write_png(d + "/digit_alpha.png", 32, 32,
                  [[c for v in rows[y] for c in (v, v, v, 255 if y < 16 else 0)] for y in range(32)], color=6)
        write_png(d + "/black.png", 32, 32, [[0] * 32 for _ in range(32)])
        rnd = list(random.Random(64).randbytes(64 * 64 * 3))  # incompressible
        write_png(d + "/noise64.png", 64, 64, [rnd[y * 192:(y + 1) * 192] for y in range(64)], color=2)
        return 0
    import numpy as np
    from cli_check import read_png  # (H, W, C) uint8 and the tEXt chunks
    if cmd == "text":
        print(read_png(sys.argv[2])[1].get(sys.argv[3], ""))
        return 0
    if cmd in ("known", "near"):
        x = np.load(sys.argv[2])
        y = read_png(sys.argv[3])[0][:, :, 0].astype(np.float64)
        if cmd == "known":
            want = (y / 255 * 2 - 1).astype(np.float32)
            ok = all((x[i, 0, :16] == want[:16]).all() for i in range(len(x)))
            moved = float(np.abs(x[:, 0, 16:] - want[16:]).mean())
            print("known pixels exact: %s; repainted half moved by %.3g on average" % (ok, moved))
            return 0 if ok and moved > 0 else 1
        u8 = np.clip(x * 127.5 + 128, 0, 255).astype(np.uint8).astype(int)
        d = int(np.abs(u8[:, 0] - y[None].astype(int)).max())
        print("max difference %d level(s)" % d)
        return 0 if d <= int(sys.argv[4]) else 1
    if cmd == "same":
        a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
        d = float(np.abs(a - b).max())
        print("max |diff| %.3g" % d)
        return 0 if d <= float(sys.argv[4]) else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
