#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_png.c (the PNG decoder, core/io/png_read.c).

    python3 tests/fuzz/make_png_corpus.py      (from the repository root; stdlib only)

corpus_png/ok_*.png   valid files of every colour type and depth the decoder takes
                      (test_replay.sh: must be accepted; test_img2img.c reads some of them)
corpus_png/bad_*.png  hostile or malformed files (must be rejected): truncated, bad CRC,
                      a zip bomb in IDAT, dimensions over the limits, bad IHDR fields, a
                      chunk claiming more bytes than the file has
The outputs are committed; rerunning this script reproduces them byte for byte.
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_png")
SIG = b"\x89PNG\r\n\x1a\n"


def chunk(kind, data, crc=None):
    c = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", c)


def png(w, h, depth, color, rows, extra=b"", ihdr=None, idat=None, end=True):
    """rows: the raw scanlines (without the filter byte)."""
    head = ihdr if ihdr is not None else struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    data = SIG + chunk(b"IHDR", head) + extra
    data += chunk(b"IDAT", zlib.compress(raw, 9) if idat is None else idat)
    return data + (chunk(b"IEND", b"") if end else b"")


def gray8(w, h):
    return [bytes((x * 37 + y * 11) & 255 for x in range(w)) for y in range(h)]


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {
        # 4x3 gray ramp: value (x*37 + y*11) & 255 (test_img2img.c checks it)
        "ok_gray8": png(4, 3, 8, 0, gray8(4, 3)),
        "ok_gray16": png(2, 2, 16, 0, [struct.pack(">HH", 0, 65535), struct.pack(">HH", 32768, 1)]),
        "ok_gray1": png(8, 1, 1, 0, [b"\xa5"]),
        "ok_gray4": png(2, 1, 4, 0, [b"\x0f"]),
        "ok_rgb8": png(2, 1, 8, 2, [bytes([255, 0, 0, 0, 0, 255])]),
        "ok_rgb16": png(1, 1, 16, 2, [struct.pack(">HHH", 65535, 0, 32768)]),
        "ok_rgba8": png(2, 1, 8, 6, [bytes([10, 20, 30, 0, 40, 50, 60, 255])]),
        "ok_graya8": png(2, 1, 8, 4, [bytes([100, 0, 200, 255])]),
        "ok_palette": png(3, 1, 8, 3, [bytes([0, 1, 2])],
                          extra=chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255]))),
        "ok_palette_trns": png(2, 1, 2, 3, [bytes([0b00010000])],
                               extra=chunk(b"PLTE", bytes([1, 2, 3, 4, 5, 6])) + chunk(b"tRNS", b"\x00")),
        "ok_text": png(2, 2, 8, 0, gray8(2, 2), extra=chunk(b"tEXt", b"seed\x001")),
        "ok_32x32": png(32, 32, 8, 0, gray8(32, 32)),
        "bad_signature": b"\x89PNX\r\n\x1a\n" + png(1, 1, 8, 0, [b"\x00"])[8:],
        "bad_truncated": png(4, 3, 8, 0, gray8(4, 3))[:40],
        "bad_crc": SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0), crc=0)
                   + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""),
        "bad_no_idat": SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
                       + chunk(b"IEND", b""),
        "bad_short_idat": png(4, 4, 8, 0, [], idat=zlib.compress(b"\x00abcd")),
        "bad_zero_width": png(0, 1, 8, 0, [b""]),
        "bad_huge": png(100000, 100000, 8, 0, [], idat=zlib.compress(b"")),
        "bad_wide": png(5000, 1, 8, 0, [bytes(5000)]),
        "bad_depth": png(1, 1, 3, 0, [b"\x00"]),
        "bad_color": png(1, 1, 8, 5, [b"\x00"]),
        "bad_palette_missing": png(1, 1, 8, 3, [b"\x00"]),
        # a 4096x4096 image announced, IDAT a zip bomb of zeros that stops short
        "bad_bomb": png(4096, 4096, 8, 0, [], idat=zlib.compress(bytes(4097 * 64), 9), end=False),
    }
    # found by fuzzing: ok_text with its tEXt length 0x79000006 (and its zlib header's second
    # byte 0xda -> 0xd0); libpng allocated the claimed 2 GB before reading (test_img2img.c)
    text = files["ok_text"]
    assert text[33:41] == struct.pack(">I", 6) + b"tEXt" and text[60] == 0xDA
    files["bad_chunk_length"] = (text[:33] + struct.pack(">I", 0x79000006) + text[37:60] + b"\xd0"
                                 + text[61:])
    for name, data in files.items():
        with open(os.path.join(OUT, name + ".png"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
