#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets and the hostile model samples.

    python3 tests/fuzz/make_corpus.py        (from the repository root; stdlib only)

corpus_safetensors/  valid and near-valid safetensors files (fuzz_safetensors.c)
corpus_npy/          valid and near-valid NPY files (fuzz_npy.c)
../data/bad_models/  malformed model files that every reader must reject (replayed by
                     test_replay.sh with --expect-reject)
The outputs are committed; rerunning this script reproduces them byte for byte.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ST = os.path.join(HERE, "corpus_safetensors")
NPY = os.path.join(HERE, "corpus_npy")
BAD = os.path.join(HERE, "..", "data", "bad_models")


def st_file(header, data=b"", pad=0, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    h += b" " * pad
    return struct.pack("<Q", len(h)) + h + data


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def f32(*vals):
    return struct.pack("<%df" % len(vals), *vals)


def npy(descr, shape, data, version=(1, 0), fortran=False, raw_dict=None):
    d = raw_dict if raw_dict is not None else "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, "True" if fortran else "False",
        "(%s)" % ("".join("%d," % s for s in shape) if len(shape) == 1 else ", ".join(map(str, shape))))
    pre = 10 if version == (1, 0) else 12
    hlen = len(d) + 1
    hlen += (64 - (pre + hlen) % 64) % 64
    text = (d + " " * (hlen - len(d) - 1) + "\n").encode("latin-1")
    size = struct.pack("<H", hlen) if version == (1, 0) else struct.pack("<I", hlen)
    return b"\x93NUMPY" + bytes(version) + size + text + data


def write(dirname, name, content):
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, name), "wb") as f:
        f.write(content)


def main():
    meta = {"edm_config": json.dumps({"format": "edm-safetensors/1", "precond": "edm"}),
            "name": "tiny"}
    good = {
        "empty": st_file({}),
        "metadata_only": st_file({"__metadata__": meta}),
        "one_f32": st_file({"w": tensor("F32", [2], 0, 8)}, f32(1.5, -2)),
        "padded": st_file({"w": tensor("F32", [2], 0, 8)}, f32(1.5, -2), pad=6),
        "mixed": st_file({"__metadata__": meta,
                          "b": tensor("F16", [2, 2], 8, 16),
                          "a": tensor("F32", [2], 0, 8),
                          "s": tensor("BF16", [], 16, 18),
                          "z": tensor("F32", [0, 3], 18, 18)},
                         f32(1, 2) + struct.pack("<4H", 0x3c00, 0x0001, 0x7c00, 0xfe00) +
                         struct.pack("<H", 0x4040)),
        "unet_like": st_file({"__metadata__": meta,
                              "model.enc.32x32_conv.weight": tensor("F32", [4, 3, 3, 3], 0, 432),
                              "model.enc.32x32_conv.bias": tensor("F32", [4], 432, 448),
                              "model.map_noise.freqs": tensor("F32", [2], 448, 456)},
                             bytes(456)),
    }
    for k, v in good.items():
        write(ST, k + ".safetensors", v)

    w = tensor("F32", [2], 0, 8)
    bad = {
        "truncated_data": st_file({"w": w}, f32(1)),
        "trailing_data": st_file({"w": w}, f32(1, 2) + b"\0"),
        "header_too_long": struct.pack("<Q", 1 << 40) + b"{}",
        "header_len_zero": struct.pack("<Q", 0) + b"{}",
        "lying_span": st_file({"w": tensor("F32", [3], 0, 8)}, f32(1, 2)),
        "end_before_begin": st_file({"w": tensor("F32", [2], 8, 0)}, f32(1, 2)),
        "overlap": st_file({"w": w, "v": tensor("F32", [2], 4, 12)}, f32(1, 2, 3)),
        "hole": st_file({"w": w, "v": tensor("F32", [2], 12, 20)}, f32(1, 2, 3, 4, 5)),
        "bad_dtype": st_file({"w": tensor("F64", [1], 0, 8)}, bytes(8)),
        "int_dtype": st_file({"w": tensor("I64", [1], 0, 8)}, bytes(8)),
        "negative_dim": st_file({"w": tensor("F32", [-1], 0, 4)}, bytes(4)),
        "float_dim": st_file({}, bytes(4), raw_header=b'{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}'),
        "shape_overflow": st_file({"w": tensor("F32", [1 << 32, 1 << 32], 0, 0)}),
        "nine_dims": st_file({"w": tensor("F32", [1] * 9, 0, 4)}, bytes(4)),
        "metadata_number": st_file({"__metadata__": {"n": 3}}),
        "metadata_array": st_file({"__metadata__": ["x"]}),
        "duplicate_tensor": st_file({}, bytes(8), raw_header=(
            b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            b'"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}')),
        "duplicate_field": st_file({}, bytes(4), raw_header=(
            b'{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}')),
        "bad_utf8": st_file({}, raw_header=b'{"\xff":{}}'),
        "nul_in_name": st_file({}, raw_header=b'{"a\\u0000b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}'),
        "not_object": st_file({}, raw_header=b"[1,2]"),
        "unknown_field": st_file({"w": dict(w, extra=1)}, f32(1, 2)),
        "missing_offsets": st_file({"w": {"dtype": "F32", "shape": [2]}}, f32(1, 2)),
        "short": b"\x08\0\0\0",
    }
    for k, v in bad.items():
        write(BAD, k + ".safetensors", v)
    # The hostile samples also seed the fuzzer: each sits next to a rule worth mutating.
    for k in ("overlap", "hole", "lying_span", "shape_overflow", "duplicate_tensor", "bad_utf8"):
        write(ST, "bad_" + k + ".safetensors", bad[k])

    ramp = lambda n: f32(*[i * 0.25 - 1 for i in range(n)])
    npys = {
        "f4_2x3": npy("<f4", (2, 3), ramp(6)),
        "f4_1d": npy("<f4", (4,), ramp(4)),
        "f4_scalar": npy("<f4", (), f32(2.5)),
        "f4_empty": npy("<f4", (0, 3), b""),
        "f8_3": npy("<f8", (3,), struct.pack("<3d", 1, -2, 1e300)),
        "u1_2x2": npy("|u1", (2, 2), bytes([0, 1, 128, 255])),
        "f4_v2": npy("<f4", (2,), ramp(2), version=(2, 0)),
        "f4_v3": npy("<f4", (2,), ramp(2), version=(3, 0)),
        "f4_8d": npy("<f4", (1, 1, 1, 1, 1, 1, 1, 2), ramp(2)),
        "dquote": npy("<f4", (), f32(1), raw_dict='{"descr":"<f4","fortran_order":False,"shape":()}'),
        "bad_fortran": npy("<f4", (2, 2), ramp(4), fortran=True),
        "bad_trunc": npy("<f4", (4,), ramp(3)),
        "bad_dtype": npy(">f4", (1,), f32(1)),
        "bad_big_dim": npy("<f4", (1 << 62,), b""),
    }
    for k, v in npys.items():
        write(NPY, k + ".npy", v)


if __name__ == "__main__":
    main()
