#!/usr/bin/env python3
"""pngtool.py - decode the daemon's PNGs with the standard library only (no Pillow).

  pngtool.py info FILE      prints "W H C" after decoding every pixel (exit 1 if corrupt)
  pngtool.py diff A B       prints "N_DIFFERENT MAX_ABS_DIFF N_VALUES" over all samples
  pngtool.py b64 FILE OUT   writes the PNG in base64 text FILE to OUT
  pngtool.py text FILE KEY  prints the value of the tEXt chunk KEY (exit 1 if none)
  pngtool.py rows A B Y0 Y1 "N_DIFFERENT MAX_ABS_DIFF N_VALUES" over rows Y0..Y1-1 only

Handles 8-bit grayscale (type 0) and RGB (type 2), non-interlaced: what edm_png_encode
writes. Checks the signature, chunk CRCs, IHDR, the zlib stream and every filter byte.
"""
import base64
import struct
import sys
import zlib


def decode(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG signature")
    pos, idat, ihdr, text = 8, b"", None, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) & 0xffffffff != crc:
            raise ValueError("bad CRC in %r" % kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"tEXt":
            key, value = body.split(b"\0", 1)
            text[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None:
        raise ValueError("no IHDR")
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (0, 2) or interlace != 0:
        raise ValueError("unexpected format depth=%d type=%d interlace=%d" % (depth, ctype, interlace))
    c = 1 if ctype == 0 else 3
    raw = zlib.decompress(idat)
    stride = w * c
    if len(raw) != h * (stride + 1):
        raise ValueError("wrong amount of pixel data")
    out, prev = [], [0] * stride
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = list(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - c] if i >= c else 0
            b = prev[i]
            cc = prev[i - c] if i >= c else 0
            if f == 0:
                pass
            elif f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
                line[i] = (line[i] + pr) & 255
            else:
                raise ValueError("bad filter byte %d" % f)
        out.extend(line)
        prev = line
    return w, h, c, out, text


def main():
    cmd = sys.argv[1]
    try:
        if cmd == "info":
            w, h, c = decode(open(sys.argv[2], "rb").read())[:3]
            print(w, h, c)
        elif cmd in ("diff", "rows"):
            a = decode(open(sys.argv[2], "rb").read())
            b = decode(open(sys.argv[3], "rb").read())
            if a[:3] != b[:3]:
                print("shape", a[:3], b[:3])
                return 1
            row = a[0] * a[2]
            y0, y1 = (int(sys.argv[4]), int(sys.argv[5])) if cmd == "rows" else (0, a[1])
            d = [abs(x - y) for x, y in zip(a[3][y0 * row:y1 * row], b[3][y0 * row:y1 * row])]
            print(sum(1 for v in d if v), max(d), len(d))
        elif cmd == "text":
            text = decode(open(sys.argv[2], "rb").read())[4]
            if sys.argv[3] not in text:
                raise ValueError("no tEXt chunk " + sys.argv[3])
            print(text[sys.argv[3]])
        elif cmd == "b64":
            open(sys.argv[3], "wb").write(base64.b64decode(open(sys.argv[2]).read()))
        else:
            raise ValueError("unknown command " + cmd)
    except (ValueError, OSError, zlib.error, struct.error) as e:
        print("pngtool:", e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
