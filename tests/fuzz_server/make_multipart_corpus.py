#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_multipart.c into corpus_multipart/ (stdlib only):

    python3 tests/fuzz_server/make_multipart_corpus.py      (from anywhere)

ok_*   forms read as forms (test_replay.sh: must be accepted by srv_multipart_parse): what the
       openai SDK and curl send, with the test PNGs, and the odd but valid (quoted boundary,
       a preamble, an empty part, a part of binary bytes holding "\\r\\n--",
       multipart/mixed inside a part, "image[]"; the post processor also reads
       application/x-www-form-urlencoded, which the router never sends it)
bad_*  forms refused (must be rejected): cut short, no closing boundary, a name twice, a part
       without a name or with one too long, too many parts, parts past the target's limits,
       no boundary, garbage after the headers, an epilogue (libmicrohttpd refuses one)
Inputs starting with "CT:" carry their own Content-Type on the first line (fuzz_multipart.c).
The outputs are committed; rerunning this script reproduces them byte for byte. Inputs the
fuzzer finds are added by fuzz.sh under other names (any outcome, no crash).
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_multipart")
B = b"XyZ"


def png(w, h, color, rows):
    def chunk(k, d):
        return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


GRAY = png(8, 8, 0, [[(x * 30 + y * 3) & 255 for x in range(8)] for y in range(8)])
MASK = png(8, 8, 0, [[0 if y < 4 else 255] * 8 for y in range(8)])
ALPHA = png(8, 8, 6, [[c for _ in range(8) for c in (255, 255, 255, 255 if y < 4 else 0)] for y in range(8)])


def text(name, value, boundary=B):
    return b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value + b"\r\n"


def file(name, data, filename=b"image.png", boundary=B):
    return (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name + b'"; filename="' + filename
            + b'"\r\nContent-Type: image/png\r\n\r\n' + data + b"\r\n")


def end(boundary=B):
    return b"--" + boundary + b"--\r\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    sdk = file(b"image", GRAY) + file(b"mask", MASK, b"mask.png") + text(b"prompt", b"seven") + text(b"n", b"2")
    cases = {
        "ok_sdk_edit": sdk + text(b"response_format", b"b64_json") + text(b"model", b"cond") + end(),
        "ok_own_fields": file(b"image", GRAY) + text(b"seeds", b"[1, 2]") + text(b"steps", b"5")
        + text(b"solver", b"euler") + text(b"strength", b"0.25") + text(b"S_max", b"inf") + end(),
        "ok_alpha_image": file(b"image", ALPHA) + text(b"prompt", b"a photo") + end(),
        "ok_variation": file(b"image", GRAY) + text(b"n", b"3") + text(b"size", b"8x8") + end(),
        "ok_image_list": file(b"image[]", GRAY) + text(b"prompt", b"") + end(),
        "ok_empty_part": file(b"image", GRAY) + text(b"user", b"") + end(),
        "ok_binary_dashes": file(b"image", b"\r\n--X\r\n--XyY\x00\xff\r\n-") + end(),
        "ok_quoted_boundary": b'CT:multipart/form-data; boundary="q-1"\n' + file(b"image", GRAY, boundary=b"q-1")
        + end(b"q-1"),
        "ok_preamble": b"ignored preamble\r\n" + file(b"image", GRAY) + end(),
        "ok_nested_mixed": b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"\r\n"
        b"Content-Type: multipart/mixed; boundary=In\r\n\r\n--In\r\nContent-Disposition: file; filename=\"a.png\"\r\n"
        b"\r\n" + GRAY + b"\r\n--In--\r\n" + end(),
        "ok_no_parts": end(),
        "ok_sha": file(b"image", GRAY) + text(b"init_image_sha256", b"00") + end(),
        "ok_form_urlencoded": b"CT:application/x-www-form-urlencoded\nn=2&steps=4",
        "bad_cut_short": sdk[:-40],
        "bad_no_closing_boundary": sdk,
        "bad_name_twice": file(b"image", GRAY) + text(b"n", b"1") + text(b"n", b"2") + end(),
        "bad_no_name": file(b"image", GRAY) + b"--XyZ\r\nContent-Disposition: form-data\r\n\r\n1\r\n" + end(),
        "bad_long_name": text(b"n" * 64, b"1") + end(),
        "bad_too_many_parts": b"".join(text(b"f%d" % i, b"1") for i in range(9)) + end(),
        "bad_text_too_long": file(b"image", GRAY) + text(b"user", b"u" * 257) + end(),
        "bad_file_too_long": file(b"image", b"\0" * 4097) + end(),
        "bad_no_boundary": b"CT:multipart/form-data\n" + sdk + end(),
        "bad_garbage_after_headers": b"--XyZ\r\nContent-Disposition: form-data; name=\"n\"\r\nxx",
        # RFC 2046 lets an epilogue follow the closing boundary; libmicrohttpd 0.9.75 refuses it
        "bad_epilogue": file(b"image", GRAY) + end() + b"epilogue",
    }
    for name, data in cases.items():
        open(os.path.join(OUT, name), "wb").write(data)
    print("corpus_multipart: %d seed files" % len(cases))


if __name__ == "__main__":
    main()
