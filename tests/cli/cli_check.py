#!/usr/bin/python3
"""Helpers for tests/cli/test_cli.sh (numpy only; no torch, no PIL).

    cli_check.py args PARAMS.json TABLE  print the `edm sample` options of a sample case, one per line
                                         (TABLE: `edm params --json`, the sampler parameter table)
    cli_check.py cmp A.npy REF.npy TOL   exit 0 when max|A-REF| / max|REF| <= TOL (prints the error)
    cli_check.py png DIR U8.npy          exit 0 when DIR/000000.png.. decode to U8.npy (N,H,W,C); a pixel
                                         may differ by 1 only where the reference value x*127.5+128 lies
                                         within 0.02 of an integer (rounding-boundary ties), given REF_X
    cli_check.py pngtext FILE KEY        print the tEXt value of KEY
"""
import json
import struct
import sys
import zlib

import numpy as np


def sample_args(path, table_path):
    """Each row of the table that the case gives, under generate.py's keyword (the row's alias,
    num_steps / discretization) or its name, becomes --KEY VALUE: the generate.py spellings,
    which edm accepts as well as its own. Ablation-only rows only for ablation cases."""
    p = json.load(open(path))
    out = []
    for row in json.load(open(table_path)):
        key = row["alias"] if row["alias"] in p else row["name"]
        if p.get(key) is None or (row["ablation_only"] and p["sampler"] != "ablation"):
            continue
        out += ["--" + key, str(p[key])]
    print("\n".join(out))


def read_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, text = 8, b"", {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        assert zlib.crc32(kind + body) & 0xffffffff == crc, "bad CRC"
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (0, 2), (depth, ctype)
            ch = 1 if ctype == 0 else 3
        elif kind == b"IDAT":
            idat += body
        elif kind == b"tEXt":
            k, v = body.split(b"\0", 1)
            text[k.decode("latin-1")] = v.decode("latin-1")
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = w * ch
    img = np.zeros((h, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        out = np.zeros(stride, dtype=np.int32)
        for i in range(stride):
            a = out[i - ch] if i >= ch else 0
            b = prev[i]
            c = prev[i - ch] if i >= ch else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            out[i] = (line[i] + pred) & 0xff
        img[y] = out
        prev = out
    return img.reshape(h, w, ch).astype(np.uint8), text


def main():
    cmd = sys.argv[1]
    if cmd == "args":
        sample_args(sys.argv[2], sys.argv[3])
    elif cmd == "cmp":
        a = np.load(sys.argv[2]).astype(np.float64)
        r = np.load(sys.argv[3]).astype(np.float64)
        tol = float(sys.argv[4])
        if a.shape != r.shape:
            print("shape %s, reference %s" % (a.shape, r.shape))
            sys.exit(1)
        err = np.abs(a - r).max() / max(np.abs(r).max(), 1e-30)
        print("max rel err %.3g" % err)
        sys.exit(0 if err <= tol else 1)
    elif cmd == "png":
        d, u8 = sys.argv[2], np.load(sys.argv[3])
        ref_x = np.load(sys.argv[4]).astype(np.float64) if len(sys.argv) > 4 else None
        bad = 0
        for i in range(u8.shape[0]):
            img, _ = read_png("%s/%06d.png" % (d, i))
            if img.shape != u8[i].shape:
                print("image %d: shape %s, reference %s" % (i, img.shape, u8[i].shape))
                sys.exit(1)
            diff = np.abs(img.astype(int) - u8[i].astype(int))
            if ref_x is not None:  # forgive one-level flips at rounding ties
                v = ref_x[i].transpose(1, 2, 0) * 127.5 + 128
                tie = np.abs(v - np.round(v)) < 0.02
                diff = np.where(tie & (diff <= 1), 0, diff)
            bad += int((diff != 0).sum())
        print("%d pixels differ" % bad)
        sys.exit(0 if bad == 0 else 1)
    elif cmd == "pngtext":
        _, text = read_png(sys.argv[2])
        print(text.get(sys.argv[3], ""))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
