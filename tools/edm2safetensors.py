#!/usr/bin/env python3
"""Convert an official NVlabs/edm network pickle into an edm-safetensors/1 model file (spec 5).

    edm2safetensors.py INPUT.pkl OUTPUT.safetensors [--name N] [--description D]
                       [--dtype F32|F16|BF16] [--dump-src FILE] [--class-names FILE]

Needs only the Python standard library and numpy. It does NOT import torch or the official
code, and it never executes anything from the pickle: a whitelisting unpickler maps the few
globals an official pickle uses onto local stand-ins (spec 5.3) and rejects every other global.

  torch_utils.persistence._reconstruct_persistent_obj  -> records class_name, state, module_src
                                                          (module_src is never executed)
  torch._utils._rebuild_parameter[_with_state]         -> the data tensor itself
  torch._utils._rebuild_tensor_v2                      -> bounds-checked strided copy of a storage
  torch._tensor._rebuild_from_type_v2                  -> the rebuilt tensor (type ignored)
  torch.storage._load_from_bytes                       -> parsed by a second restricted unpickler
                                                          (legacy torch.save of one storage)
  torch.nn.modules.container.ModuleDict/List, Sequential -> generic module stand-ins
  collections.OrderedDict, dnnlib.util.EasyDict (as dict), builtins/__builtin__ set, frozenset
  numpy.core.multiarray.scalar, numpy.dtype            -> numeric scalars / dtypes only
  _codecs.encode                                       -> latin-1 only (protocol-2 bytes)

Every configuration value comes from the pickle: the preconditioner's attributes
(img_resolution, img_channels, label_dim, use_fp16 and its scalars) and the network's recorded
constructor arguments (_init_kwargs, plus _init_args mapped onto the signature). Anything not
recorded gets the official default (tools/edmfile.py fill_config). Tensors are written in
state_dict order (spec 1.10). Exit status: 0 on success, 1 on any error, 2 on usage errors.

A class-conditional network gets the names of its classes in the metadata (class_names, the
names edmd's prompt matches; tools/edmfile.py): from --class-names FILE, or CIFAR-10's ten when
the network has ten classes and its pickle's name or training set names CIFAR-10.
"""

import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edmfile  # noqa: E402


class ConvertError(Exception):
    pass


# -----------------------------------------------------------------------------------------------
# Stand-ins for the objects an official pickle builds.


class PersistentObj:
    """An instance of a @persistent_class (networks.py, loss.py, augment.py), not executed."""

    def __init__(self, class_name, state, module_src):
        self.class_name = class_name
        self.state = state
        self.module_src = module_src


class ModuleStub:
    """torch.nn.ModuleDict / ModuleList / Sequential: only its __dict__ matters."""
    class_name = "Module"

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slotstate)
            state = state[0]
        if not isinstance(state, dict):
            raise ConvertError("module state is not a dict")
        self.state = state


def _module_stub(name):
    return type(name, (ModuleStub,), {"class_name": name})


class EasyDict(dict):
    pass


class StorageArray:
    """A storage as a flat numpy array (read-only view of the pickle's bytes)."""

    def __init__(self, array):
        self.array = array


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise ConvertError("unsupported persistent object (meta type %r)" % (
            meta.get("type") if isinstance(meta, dict) else type(meta).__name__))
    name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(name, str) or not isinstance(state, dict):
        raise ConvertError("malformed persistent object")
    src = meta.get("module_src")
    return PersistentObj(name, state, src if isinstance(src, str) else None)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, np.ndarray):
        raise ConvertError("parameter data is not a tensor")
    return data


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, StorageArray):
        raise ConvertError("tensor storage is not a storage")
    arr = storage.array
    try:
        size = tuple(int(s) for s in size)
        stride = tuple(int(s) for s in stride)
        offset = int(storage_offset)
    except (TypeError, ValueError):
        raise ConvertError("malformed tensor size/stride")
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
        raise ConvertError("malformed tensor size/stride")
    numel = int(np.prod(size, dtype=np.int64)) if size else 1
    if numel == 0:
        return np.zeros(size, dtype=arr.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= arr.size:
        raise ConvertError("tensor view reaches past its storage (%d >= %d)" % (last, arr.size))
    view = np.lib.stride_tricks.as_strided(arr[offset:], shape=size,
                                           strides=tuple(s * arr.itemsize for s in stride), writeable=False)
    return np.array(view, dtype=arr.dtype.newbyteorder("="), order="C")


def _rebuild_from_type_v2(func, new_type, args, state):
    if func is not _rebuild_tensor_v2 and func is not _rebuild_parameter:
        raise ConvertError("unsupported tensor rebuild function")
    return func(*args)


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or not isinstance(data, bytes):
        raise ConvertError("unsupported numpy scalar")
    if len(data) != dtype.itemsize:
        raise ConvertError("malformed numpy scalar")
    return np.frombuffer(data, dtype=dtype)[0]


def _np_dtype(name, align=False, copy=True):
    try:
        dt = np.dtype(name, bool(align), True)
    except (TypeError, ValueError):
        raise ConvertError("unsupported numpy dtype %r" % (name,))
    if dt.kind not in "biuf":
        raise ConvertError("unsupported numpy dtype %r" % (name,))
    return dt


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    if not isinstance(obj, str) or encoding != "latin1":
        raise ConvertError("unsupported _codecs.encode call")
    return obj.encode("latin1")


_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "bf16",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}


class _StorageType:
    def __init__(self, name):
        self.name = name


class _StorageUnpickler(pickle.Unpickler):
    """Reads one legacy (non-zip) torch.save blob of a single storage."""

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise ConvertError("refusing global %s.%s inside a tensor storage" % (module, name))

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise ConvertError("unsupported persistent id in a tensor storage")
        stype, key, _location, numel = pid[1], pid[2], pid[3], pid[4]
        view = pid[5] if len(pid) > 5 else None
        if not isinstance(stype, _StorageType):
            raise ConvertError("unsupported storage type")
        return ("storage", stype.name, str(key), int(numel), view)


_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


def _load_from_bytes(blob):
    if not isinstance(blob, bytes):
        raise ConvertError("tensor storage is not bytes")
    f = io.BytesIO(blob)
    up = _StorageUnpickler(f)
    try:
        magic = up.load()
        if magic != _LEGACY_MAGIC:
            raise ConvertError("tensor storage is not a legacy torch.save blob (zip storages are unsupported)")
        if up.load() != 1001:
            raise ConvertError("unsupported torch.save protocol version in a tensor storage")
        sys_info = up.load()
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
            raise ConvertError("big-endian tensor storages are unsupported")
        ref = up.load()
        keys = up.load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, AttributeError) as e:
        raise ConvertError("malformed tensor storage: %s" % e)
    if not (isinstance(ref, tuple) and len(ref) == 5 and ref[0] == "storage") or not isinstance(keys, list):
        raise ConvertError("malformed tensor storage")
    _, sname, key, numel, view = ref
    data = {}
    for k in keys:
        head = f.read(8)
        if len(head) != 8:
            raise ConvertError("truncated tensor storage")
        (count,) = struct.unpack("<q", head)
        dt = _STORAGE_DTYPES[sname]
        itemsize = 2 if dt == "bf16" else np.dtype(dt).itemsize
        if count < 0 or count * itemsize > len(blob) - f.tell():
            raise ConvertError("truncated tensor storage")
        raw = memoryview(blob)[f.tell():f.tell() + count * itemsize]
        f.seek(count * itemsize, io.SEEK_CUR)
        if dt == "bf16":
            arr = (np.frombuffer(raw, dtype="<u2").astype("<u4") << 16).view("<f4")
        else:
            arr = np.frombuffer(raw, dtype=dt)
        data[str(k)] = arr
    if key not in data:
        raise ConvertError("tensor storage data missing")
    arr = data[key]
    if view is not None:  # very old torch: (view_key, offset, view_size)
        try:
            _vk, off, vsize = view
            arr = arr[int(off):int(off) + int(vsize)]
        except (TypeError, ValueError):
            raise ConvertError("malformed storage view")
    return StorageArray(arr)


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): type("Tensor", (), {}),
    ("torch.nn.parameter", "Parameter"): type("Parameter", (), {}),
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("torch.nn.modules.container", "ModuleDict"): _module_stub("ModuleDict"),
    ("torch.nn.modules.container", "ModuleList"): _module_stub("ModuleList"),
    ("torch.nn.modules.container", "Sequential"): _module_stub("Sequential"),
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,  # protocol < 3 pickles name builtins the Python 2 way
    ("__builtin__", "frozenset"): frozenset,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    ("numpy", "dtype"): _np_dtype,
    ("_codecs", "encode"): _codecs_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ConvertError("refusing to load global %s.%s (not on the whitelist; "
                               "this is not an official EDM network pickle or it is unsafe)" % (module, name))

    def persistent_load(self, pid):
        raise ConvertError("unexpected persistent id in the pickle")


# -----------------------------------------------------------------------------------------------
# Interpretation.

PRECOND_CLASSES = ("VPPrecond", "VEPrecond", "iDDPMPrecond", "EDMPrecond")
MODEL_CLASSES = ("SongUNet", "DhariwalUNet")
KNOWN_CLASSES = set(PRECOND_CLASSES + MODEL_CLASSES + (
    "UNetBlock", "Linear", "Conv2d", "GroupNorm", "PositionalEmbedding", "FourierEmbedding",
    "ModuleDict", "ModuleList", "Sequential"))
MODEL_SIGNATURE = {
    "SongUNet": ["img_resolution", "in_channels", "out_channels", "label_dim", "augment_dim",
                 "model_channels", "channel_mult", "channel_mult_emb", "num_blocks", "attn_resolutions",
                 "dropout", "label_dropout", "embedding_type", "channel_mult_noise", "encoder_type",
                 "decoder_type", "resample_filter"],
    "DhariwalUNet": ["img_resolution", "in_channels", "out_channels", "label_dim", "augment_dim",
                     "model_channels", "channel_mult", "channel_mult_emb", "num_blocks", "attn_resolutions",
                     "dropout", "label_dropout"],
}


def _is_module(obj):
    return isinstance(obj, (PersistentObj, ModuleStub))


def state_dict(root):
    """[(name, ndarray)] in torch's state_dict order (spec 1.10)."""
    out = []
    seen = set()

    def visit(mod, prefix):
        if id(mod) in seen:
            raise ConvertError("module graph has a cycle or shared module at %r" % prefix)
        seen.add(id(mod))
        if mod.class_name not in KNOWN_CLASSES:
            raise ConvertError("unknown class %r at %r" % (mod.class_name, prefix.rstrip(".") or "ema"))
        st = mod.state
        params = st.get("_parameters", {})
        buffers = st.get("_buffers", {})
        nonpersistent = st.get("_non_persistent_buffers_set", set())
        modules = st.get("_modules", {})
        for what in (params, buffers, modules):
            if not isinstance(what, dict):
                raise ConvertError("malformed module state at %r" % prefix)
        for group, skip in ((params, ()), (buffers, nonpersistent)):
            for k, v in group.items():
                if v is None or k in skip:
                    continue
                if not isinstance(v, np.ndarray):
                    raise ConvertError("%s%s is not a tensor" % (prefix, k))
                out.append((prefix + k, v))
        for k, m in modules.items():
            if m is None:
                continue
            if not _is_module(m):
                raise ConvertError("%s%s is not a module" % (prefix, k))
            visit(m, prefix + k + ".")

    visit(root, "")
    return out


def _attr(state, key):
    return state[key] if key in state else None


def build_config(ema):
    pst = ema.state
    model = pst.get("_modules", {}).get("model")
    if not isinstance(model, PersistentObj):
        raise ConvertError("the network has no 'model' submodule")
    if model.class_name not in MODEL_CLASSES:
        raise ConvertError("unknown class %r for the underlying model (expected SongUNet or DhariwalUNet)"
                           % model.class_name)
    precond = edmfile.PRECOND_CLASS[ema.class_name]
    pinit = pst.get("_init_kwargs") or {}
    if not isinstance(pinit, dict):
        raise ConvertError("malformed _init_kwargs")

    def top(key, default=None):
        v = _attr(pst, key)
        if v is None:
            v = pinit.get(key, default)
        if v is None:
            raise ConvertError("the network pickle does not record %s" % key)
        return v

    pk = {}
    for key in edmfile.PRECOND_DEFAULTS[precond]:
        v = _attr(pst, key)
        if v is None:
            v = pinit.get(key)
        if v is not None:
            pk[key] = v
    mk = dict(model.state.get("_init_kwargs") or {})
    margs = model.state.get("_init_args") or ()
    if not isinstance(margs, (tuple, list)) or not isinstance(mk, dict):
        raise ConvertError("malformed _init_args/_init_kwargs of the model")
    sig = MODEL_SIGNATURE[model.class_name]
    if len(margs) > len(sig):
        raise ConvertError("too many positional arguments recorded for %s" % model.class_name)
    for k, v in zip(sig, margs):
        mk.setdefault(k, v)
    try:
        return edmfile.fill_config(precond, model.class_name, top("img_resolution"), top("img_channels"),
                                   top("label_dim", 0), top("use_fp16", False), pk, mk)
    except ValueError as e:
        raise ConvertError("bad network configuration: %s" % e)


def load_pickle(path):
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ConvertError("cannot open %s: %s" % (path, e.strerror or e))
    with f:
        try:
            return RestrictedUnpickler(f).load()
        except ConvertError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
                AttributeError, struct.error, MemoryError, UnicodeDecodeError) as e:
            raise ConvertError("%s is not a valid pickle (or is truncated): %s: %s"
                               % (path, type(e).__name__, e))


def class_names_for(src, data, label_dim, class_names_file=None):
    """The class_names metadata value: from the file, else CIFAR-10's for a 10-class network
    whose pickle or training set names CIFAR-10, else None."""
    if class_names_file:
        try:
            classes = edmfile.read_class_names(class_names_file)
        except (OSError, UnicodeDecodeError) as e:
            raise ConvertError("cannot read the class names %s: %s" % (class_names_file, e))
        if len(classes) != label_dim:
            raise ConvertError("%s names %d classes but the network has label_dim %d"
                               % (class_names_file, len(classes), label_dim))
    else:
        ds = data.get("dataset_kwargs")
        where = os.path.basename(src) + " " + str(ds.get("path", "") if isinstance(ds, dict) else "")
        if label_dim != 10 or "cifar10" not in where.lower().replace("-", ""):
            return None
        classes = edmfile.CIFAR10_CLASSES
    try:
        return edmfile.class_names_json(classes)
    except ValueError as e:
        raise ConvertError("class names: %s" % e)


def convert(src, dst, name=None, description=None, dtype="F32", dump_src=None, class_names=None):
    data = load_pickle(src)
    if not isinstance(data, dict):
        raise ConvertError("%s is not a network pickle (top level is %s, expected a dict)"
                           % (src, type(data).__name__))
    if "ema" not in data:
        raise ConvertError("%s has no 'ema' entry (keys: %s)" % (src, ", ".join(map(str, data.keys()))))
    ema = data["ema"]
    if not isinstance(ema, PersistentObj):
        raise ConvertError("'ema' is not an EDM network object")
    if ema.class_name not in PRECOND_CLASSES:
        raise ConvertError("unknown class %r for 'ema' (expected one of %s)"
                           % (ema.class_name, ", ".join(PRECOND_CLASSES)))
    config = build_config(ema)
    tensors = state_dict(ema)
    if not tensors:
        raise ConvertError("the network has no tensors")
    for k, v in tensors:
        if v.dtype.kind != "f":
            raise ConvertError("tensor %s has non-float dtype %s" % (k, v.dtype))

    meta = collections.OrderedDict()
    meta["name"] = name if name is not None else os.path.splitext(os.path.basename(src))[0]
    meta["description"] = (description if description is not None
                           else "converted from %s" % os.path.basename(src))
    meta["source_file"] = os.path.basename(src)
    meta["converter"] = "tools/edm2safetensors.py"
    if ema.module_src is not None:
        meta["module_src_sha256"] = hashlib.sha256(ema.module_src.encode("utf-8")).hexdigest()
        if dump_src:
            with open(dump_src, "w") as f:
                f.write(ema.module_src)
    names = class_names_for(src, data, config["label_dim"], class_names)
    if names is not None:
        meta["class_names"] = names
    ds = data.get("dataset_kwargs")
    if isinstance(ds, dict):
        try:
            meta["training_dataset_kwargs"] = json.dumps(ds, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):
            pass
    try:
        edmfile.write_model(dst, tensors, config, meta, dtype=dtype, keep_f32=edmfile.F32_BUFFERS)
    except OSError as e:
        raise ConvertError("cannot write %s: %s" % (dst, e.strerror or e))
    except ValueError as e:
        raise ConvertError("cannot store the network as %s: %s" % (dtype, e))
    return config, tensors


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Convert an official EDM network pickle (network-snapshot-*.pkl, edm-*.pkl) "
                    "into an edm-safetensors/1 model file, without torch and without executing "
                    "anything from the pickle.")
    ap.add_argument("input", help="the .pkl file")
    ap.add_argument("output", help="the .safetensors file to write")
    ap.add_argument("--name", help="metadata name (default: the input's base name)")
    ap.add_argument("--description", help="metadata description")
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"],
                    help="tensor storage type (default F32; the pickles hold fp32). The buffers "
                         "u (iDDPM) and model.map_noise.freqs (Fourier) always stay F32")
    ap.add_argument("--dump-src", metavar="FILE", help="also write the pickle's embedded networks.py source")
    ap.add_argument("--class-names", metavar="FILE",
                    help="names of the classes, what edmd's prompt matches: one line per class in label "
                         "order, several names of a class separated by commas (default: CIFAR-10's ten "
                         "for a 10-class network whose pickle or training set names CIFAR-10)")
    args = ap.parse_args(argv)
    try:
        config, tensors = convert(args.input, args.output, args.name, args.description, args.dtype,
                                  args.dump_src, args.class_names)
    except ConvertError as e:
        print("edm2safetensors: error: %s" % e, file=sys.stderr)
        return 1
    n = sum(int(v.size) for _, v in tensors)
    print("wrote %s: %s / %s, %dx%d, %d channels, label_dim %d, %d tensors, %d parameters (%s)" % (
        args.output, config["precond"], config["model_type"], config["img_resolution"],
        config["img_resolution"], config["img_channels"], config["label_dim"], len(tensors), n, args.dtype))
    return 0


if __name__ == "__main__":
    sys.exit(main())
