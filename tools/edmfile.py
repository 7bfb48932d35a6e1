"""Read and write `edm-safetensors/1` model files (spec section 0). numpy only, no torch.

A model file is one safetensors file:

    u64 little-endian N | N bytes of JSON header (padded with spaces) | raw tensor bytes

The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
relative to the first byte after the header) and holds "__metadata__", an object of strings.
`__metadata__["edm_config"]` is a JSON string with every preconditioner and network argument
written out (see fill_config). Tensor names are the official preconditioner's state_dict() keys,
stored contiguously in state_dict order.

API
---
write_model(path, tensors, config, metadata=None, dtype="F32")
    tensors:  list of (name, np.ndarray) in state_dict order (any float dtype; converted to `dtype`).
    config:   the edm_config object (a dict, normally from fill_config). Infinite floats are written
              as the strings "inf" / "-inf"; "format" is set to "edm-safetensors/1".
    metadata: extra str -> str keys for __metadata__ (name, description, licence, ...).
    dtype:    "F32" | "F16" | "BF16" (rounding to nearest even; a finite value that would
              overflow to infinity raises ValueError).
    keep_f32: tensor names stored as F32 whatever `dtype` says (safetensors dtypes are per
              tensor), e.g. buffers whose precision matters: iDDPM `u`, Fourier `freqs`
              (F32_BUFFERS below).

read_model(path) -> (tensors, config, metadata)
    tensors:  dict name -> np.ndarray in file order (F32 -> float32, F16 -> float16,
              BF16 -> float32 widened exactly).
    config:   the parsed edm_config with "inf"/"-inf" strings turned back into floats
              (None if the file has no edm_config).
    metadata: the other __metadata__ keys (str -> str).
    Raises ValueError on a malformed file (bad lengths, offsets, dtypes, overlapping data).

set_metadata(path, updates, out=None)
    Rewrites the file's __metadata__ with `updates` (str -> str; a None value deletes the key),
    keeping every tensor byte as it is (only the header changes), into `out` (default: in place).

Class names (metadata "class_names", what edmd's prompt matches)
    A JSON string: an array with one entry per class label, in label order, each a name or a
    list of names, the first being the one to show: '[["0", "zero"], ["1", "one"], ...]' or
    '["airplane", "automobile", ...]'. Names are non-blank, at most 64 bytes, and unique
    without regard to case across all classes (edmd refuses a file that breaks this).
class_names_json(classes) -> str
    The metadata value for a list (one entry per class) of names or lists of names.
read_class_names(path) -> list of lists of names
    A class-names file: one line per class in label order, its names separated by commas
    (the form of ImageNet's synset lists: "tench, Tinca tinca"); blank lines and lines
    starting with '#' are skipped.
CIFAR10_CLASSES
    CIFAR-10's ten class names in label order.

fill_config(precond, model_type, img_resolution, img_channels, label_dim, use_fp16,
            precond_kwargs=None, model_kwargs=None) -> dict
    Builds a complete edm_config: the given kwargs with every official default filled in
    (spec 1.8 SongUNet, 1.9 DhariwalUNet, 2.1 preconditioners). precond is "vp"|"ve"|"iddpm"|"edm"
    (the class names VPPrecond, ... are accepted too); model_type is "SongUNet"|"DhariwalUNet".
    precond_kwargs may hold only that preconditioner's scalars (vp: beta_d, beta_min, M,
    epsilon_t; ve: sigma_min, sigma_max; iddpm: C_1, C_2, M; edm: sigma_min, sigma_max,
    sigma_data). model_kwargs may hold only the network class's keyword arguments; the keys
    img_resolution, in_channels, out_channels and label_dim are accepted and dropped (they are set
    by the preconditioner). Unknown keys raise ValueError, as they would be a TypeError in the
    official constructors. numpy scalars are converted to plain Python numbers.
"""

import json
import math
import struct
from collections import OrderedDict

import numpy as np

FORMAT = "edm-safetensors/1"

PRECONDS = ("vp", "ve", "iddpm", "edm")
PRECOND_CLASS = {"VPPrecond": "vp", "VEPrecond": "ve", "iDDPMPrecond": "iddpm", "EDMPrecond": "edm"}
MODEL_TYPES = ("SongUNet", "DhariwalUNet")

# Official constructor defaults (training/networks.py at 008a4e5; spec 2.1).
PRECOND_DEFAULTS = {
    "vp": OrderedDict([("beta_d", 19.9), ("beta_min", 0.1), ("M", 1000), ("epsilon_t", 1e-5)]),
    "ve": OrderedDict([("sigma_min", 0.02), ("sigma_max", 100.0)]),
    "iddpm": OrderedDict([("C_1", 0.001), ("C_2", 0.008), ("M", 1000)]),
    "edm": OrderedDict([("sigma_min", 0.0), ("sigma_max", math.inf), ("sigma_data", 0.5)]),
}
# Default network class of each preconditioner (its model_type kwarg default).
PRECOND_MODEL_DEFAULT = {"vp": "SongUNet", "ve": "SongUNet", "iddpm": "DhariwalUNet", "edm": "DhariwalUNet"}

# Spec 1.8 / 1.9. Order here is the order written to the file.
MODEL_DEFAULTS = {
    "SongUNet": OrderedDict([
        ("augment_dim", 0), ("model_channels", 128), ("channel_mult", [1, 2, 2, 2]),
        ("channel_mult_emb", 4), ("num_blocks", 4), ("attn_resolutions", [16]),
        ("dropout", 0.10), ("label_dropout", 0.0), ("embedding_type", "positional"),
        ("channel_mult_noise", 1), ("encoder_type", "standard"), ("decoder_type", "standard"),
        ("resample_filter", [1, 1]),
    ]),
    "DhariwalUNet": OrderedDict([
        ("augment_dim", 0), ("model_channels", 192), ("channel_mult", [1, 2, 3, 4]),
        ("channel_mult_emb", 4), ("num_blocks", 3), ("attn_resolutions", [32, 16, 8]),
        ("dropout", 0.10), ("label_dropout", 0.0),
    ]),
}
# Keys set by the preconditioner itself; accepted in model_kwargs and dropped.
_PRECOND_SET_KEYS = ("img_resolution", "in_channels", "out_channels", "label_dim")
_INT_KEYS = {"M", "augment_dim", "model_channels", "channel_mult_emb", "num_blocks", "channel_mult_noise"}
_INT_LIST_KEYS = {"channel_mult", "attn_resolutions"}
_STR_CHOICES = {
    "embedding_type": ("positional", "fourier"),
    "encoder_type": ("standard", "skip", "residual"),
    "decoder_type": ("standard", "skip"),
}

# Buffers that lose meaning in 16-bit: iDDPM's u table (round_sigma, sigma range) and the Fourier
# frequencies (embedding arguments reach hundreds of radians).
F32_BUFFERS = ("u", "model.map_noise.freqs")

_DTYPES = {"F32": (np.dtype("<f4"), 4), "F16": (np.dtype("<f2"), 2), "BF16": (np.dtype("<u2"), 2)}


# ------------------------------------------------------------------------------------------
# Config


def _plain(v):
    """numpy scalars / arrays / tuples -> plain Python values."""
    if isinstance(v, np.ndarray):
        return [_plain(a) for a in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_plain(a) for a in v]
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _as_int(key, v):
    v = _plain(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
        raise ValueError("%s must be an integer, got %r" % (key, v))
    return int(v)


def _as_float(key, v):
    v = _plain(v)
    if isinstance(v, str) and v in ("inf", "-inf"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("%s must be a number, got %r" % (key, v))
    return float(v)


def _norm_value(key, v):
    if key in _INT_KEYS:
        return _as_int(key, v)
    if key in _INT_LIST_KEYS:
        v = _plain(v)
        if not isinstance(v, list):
            raise ValueError("%s must be a list, got %r" % (key, v))
        return [_as_int(key, a) for a in v]
    if key == "resample_filter":
        v = _plain(v)
        if not isinstance(v, list) or not v:
            raise ValueError("resample_filter must be a non-empty list, got %r" % (v,))
        return [int(a) if float(a) == int(a) else float(a) for a in (_as_float(key, a) for a in v)]
    if key in _STR_CHOICES:
        if v not in _STR_CHOICES[key]:
            raise ValueError("%s must be one of %s, got %r" % (key, "/".join(_STR_CHOICES[key]), v))
        return v
    return _as_float(key, v)


def fill_config(precond, model_type, img_resolution, img_channels, label_dim=0, use_fp16=False,
                precond_kwargs=None, model_kwargs=None):
    """Return a complete edm_config dict with every default filled in (see module docstring)."""
    precond = PRECOND_CLASS.get(precond, precond)
    if precond not in PRECONDS:
        raise ValueError("unknown preconditioner %r" % (precond,))
    if model_type is None:
        model_type = PRECOND_MODEL_DEFAULT[precond]
    if model_type not in MODEL_TYPES:
        raise ValueError("unknown model_type %r" % (model_type,))

    pk = OrderedDict()
    given = dict(precond_kwargs or {})
    for key, default in PRECOND_DEFAULTS[precond].items():
        v = given.pop(key, default)
        pk[key] = _as_int(key, v) if key == "M" else _as_float(key, v)
    if given:
        raise ValueError("unknown %s preconditioner argument(s): %s" % (precond, ", ".join(sorted(given))))

    mk = OrderedDict()
    given = dict(model_kwargs or {})
    for key in _PRECOND_SET_KEYS:
        given.pop(key, None)
    for key, default in MODEL_DEFAULTS[model_type].items():
        mk[key] = _norm_value(key, given.pop(key, default))
    if given:
        raise ValueError("unknown %s argument(s): %s" % (model_type, ", ".join(sorted(given))))

    use_fp16 = _plain(use_fp16)
    if not isinstance(use_fp16, (bool, int)):
        raise ValueError("use_fp16 must be a bool, got %r" % (use_fp16,))
    return OrderedDict([
        ("format", FORMAT),
        ("precond", precond),
        ("model_type", model_type),
        ("img_resolution", _as_int("img_resolution", img_resolution)),
        ("img_channels", _as_int("img_channels", img_channels)),
        ("label_dim", _as_int("label_dim", label_dim)),
        ("use_fp16", bool(use_fp16)),
        ("precond_kwargs", pk),
        ("model_kwargs", mk),
    ])


def _encode_inf(v):
    """Infinite floats -> "inf"/"-inf" strings; NaN is refused (JSON has neither)."""
    if isinstance(v, dict):
        return OrderedDict((k, _encode_inf(a)) for k, a in v.items())
    if isinstance(v, (list, tuple)):
        return [_encode_inf(a) for a in v]
    v = _plain(v)
    if isinstance(v, float):
        if math.isnan(v):
            raise ValueError("NaN cannot be stored in edm_config")
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return v


def _decode_inf(v):
    if isinstance(v, dict):
        return OrderedDict((k, _decode_inf(a)) for k, a in v.items())
    if isinstance(v, list):
        return [_decode_inf(a) for a in v]
    if v == "inf":
        return math.inf
    if v == "-inf":
        return -math.inf
    return v


# ------------------------------------------------------------------------------------------
# Tensors


def _f32_to_bf16(a):
    """float32 array -> uint16 bf16 bits, round to nearest even (NaN kept quiet)."""
    b = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    nan = np.isnan(np.asarray(a, dtype=np.float32))
    out = rounded.astype(np.uint16)
    out[nan] = ((b[nan] >> 16) | 0x40).astype(np.uint16)
    return out


def _bf16_to_f32(u):
    return (u.astype("<u4") << 16).view("<f4")


def _encode_tensor(arr, dtype):
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiub":
        raise ValueError("tensor of dtype %s cannot be stored" % arr.dtype)
    if dtype == "F32":
        return np.ascontiguousarray(arr, dtype="<f4")
    a32 = np.ascontiguousarray(arr, dtype="<f4")
    with np.errstate(over="ignore"):
        if dtype == "F16":
            enc = a32.astype("<f2")
            wide = enc.astype(np.float32)
        else:
            enc = _f32_to_bf16(a32)
            wide = _bf16_to_f32(enc)
    if np.any(np.isinf(wide) & np.isfinite(a32)):
        raise ValueError("values outside the %s range" % dtype)
    return enc


def write_model(path, tensors, config, metadata=None, dtype="F32", keep_f32=()):
    """Write an edm-safetensors/1 file (see module docstring)."""
    if dtype not in _DTYPES:
        raise ValueError("dtype must be F32, F16 or BF16, got %r" % (dtype,))
    meta = OrderedDict()
    if config is not None:
        cfg = OrderedDict(config)
        cfg["format"] = FORMAT
        cfg.move_to_end("format", last=False)
        meta["edm_config"] = json.dumps(_encode_inf(cfg), allow_nan=False)
    for k, v in (metadata or {}).items():
        if k == "edm_config":
            raise ValueError("metadata key edm_config is reserved for the config argument")
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValueError("metadata must map str to str (key %r)" % (k,))
        meta[k] = v

    header = OrderedDict()
    header["__metadata__"] = meta
    blobs = []
    offset = 0
    seen = set()
    for name, arr in tensors:
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise ValueError("bad tensor name %r" % (name,))
        if name in seen:
            raise ValueError("duplicate tensor name %r" % (name,))
        seen.add(name)
        try:
            tdt = "F32" if name in keep_f32 else dtype
            enc = _encode_tensor(arr, tdt)
        except ValueError as e:
            raise ValueError("tensor %s: %s" % (name, e))
        data = enc.tobytes(order="C")
        header[name] = OrderedDict([("dtype", tdt), ("shape", [int(s) for s in np.shape(arr)]),
                                    ("data_offsets", [offset, offset + len(data)])])
        offset += len(data)
        blobs.append(data)

    hjson = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for data in blobs:
            f.write(data)


def read_model(path):
    """Read an edm-safetensors/1 (or any F32/F16/BF16 safetensors) file; see module docstring."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    if n < 2 or n > len(raw) - 8 or n > 100 * 1024 * 1024:
        raise ValueError("%s: bad header length %d" % (path, n))
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError("%s: header is not valid JSON: %s" % (path, e))
    if not isinstance(header, dict):
        raise ValueError("%s: header is not a JSON object" % path)
    data = memoryview(raw)[8 + n:]

    meta = header.pop("__metadata__", OrderedDict())
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("%s: __metadata__ must be an object of strings" % path)
    meta = OrderedDict(meta)
    config = None
    if "edm_config" in meta:
        try:
            config = _decode_inf(json.loads(meta.pop("edm_config"), object_pairs_hook=OrderedDict))
        except ValueError as e:
            raise ValueError("%s: edm_config is not valid JSON: %s" % (path, e))

    entries = []
    for name, info in header.items():
        try:
            dt = info["dtype"]
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("%s: tensor %r has a malformed entry" % (path, name))
        if dt not in _DTYPES:
            raise ValueError("%s: tensor %r has unsupported dtype %r" % (path, name, dt))
        if any(s < 0 for s in shape):
            raise ValueError("%s: tensor %r has a negative dimension" % (path, name))
        size = _DTYPES[dt][1] * int(np.prod(shape, dtype=np.int64))
        if not (0 <= begin <= end <= len(data)) or end - begin != size:
            raise ValueError("%s: tensor %r has bad data_offsets [%d, %d]" % (path, name, begin, end))
        entries.append((begin, end, name, dt, shape))
    entries.sort()
    for a, b in zip(entries, entries[1:]):
        if b[0] < a[1]:
            raise ValueError("%s: tensors %r and %r overlap" % (path, a[2], b[2]))

    tensors = OrderedDict()
    for begin, end, name, dt, shape in entries:
        arr = np.frombuffer(data[begin:end], dtype=_DTYPES[dt][0]).reshape(shape)
        tensors[name] = _bf16_to_f32(arr) if dt == "BF16" else arr.copy()
    return tensors, config, meta


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck"]


def class_names_json(classes):
    """The "class_names" metadata value (see the module docstring)."""
    out, seen = [], {}
    for label, names in enumerate(classes):
        names = [names] if isinstance(names, str) else list(names)
        if not names:
            raise ValueError("class %d has no name" % label)
        for n in names:
            if not isinstance(n, str) or not n.strip() or len(n.encode("utf-8")) > 64:
                raise ValueError("class %d: bad name %r (non-blank, at most 64 bytes)" % (label, n))
            if n.lower() in seen:
                raise ValueError("%r names class %d and class %d" % (n, seen[n.lower()], label))
            seen[n.lower()] = label
        out.append(names[0] if len(names) == 1 else names)
    return json.dumps(out, ensure_ascii=False)


def read_class_names(path):
    """A class-names file: one class per line, names separated by commas (see above)."""
    classes = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            classes.append([n.strip() for n in line.split(",") if n.strip()])
    return classes


def set_metadata(path, updates, out=None):
    """Rewrite __metadata__ (updates: str -> str, None deletes), tensor bytes untouched."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    meta = OrderedDict(header.pop("__metadata__", {}))
    for k, v in updates.items():
        if k == "edm_config":
            raise ValueError("metadata key edm_config is not for set_metadata")
        if v is None:
            meta.pop(k, None)
        elif not isinstance(k, str) or not isinstance(v, str):
            raise ValueError("metadata must map str to str (key %r)" % (k,))
        else:
            meta[k] = v
    new = OrderedDict([("__metadata__", meta)])
    new.update(header)
    hjson = json.dumps(new, separators=(",", ":"), allow_nan=False).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(out or path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        f.write(raw[8 + n:])


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2:
        sys.exit("usage: edmfile.py MODEL.safetensors   (prints config, metadata and tensors)")
    t, c, m = read_model(sys.argv[1])
    print(json.dumps(_encode_inf(c), indent=2))
    for k, v in m.items():
        print("%s: %s" % (k, v))
    for k, v in t.items():
        print("%-56s %-6s %s" % (k, v.dtype, list(v.shape)))
    print("%d tensors, %d parameters" % (len(t), sum(v.size for v in t.values())))
