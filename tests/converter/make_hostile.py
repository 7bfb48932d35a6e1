#!/usr/bin/env python3
"""Write hostile and malformed pickles for the converter tests (standard library only).

    make_hostile.py OUTDIR MARKER

Every pickle that could run code would create the file MARKER if it were ever executed; the
test asserts that MARKER never appears. The torch/official globals are imitated with fake
modules registered in sys.modules, so no torch is needed.

  os_system.pkl          dict(ema=<__reduce__ -> os.system("touch MARKER")>)
  exec_proto0.pkl        protocol-0 bytes calling builtins.exec
  module_src_exec.pkl    a persistent object whose module_src would create MARKER if executed
                         (the official loader execs module_src; the converter must not)
  storage_global.pkl     a tensor storage blob whose inner pickle calls os.system
  unknown_class.pkl      ema of class 'EvilPrecond'
  unknown_inner.pkl      an EDMPrecond whose model contains a module of unknown class
  oob_tensor.pkl         a tensor view reaching past its 4-element storage
  no_ema.pkl             dict without 'ema'
  not_dict.pkl           a list at top level
  notapickle.pkl         plain text
  fake_init_args.pkl     VALID: hand-built EDMPrecond/SongUNet with positional _init_args
                         (img_resolution, in_channels, out_channels) and one tensor
"""

import collections
import io
import os
import pickle
import struct
import sys
import types

OUT, MARKER = sys.argv[1], sys.argv[2]
os.makedirs(OUT, exist_ok=True)


def fake(modname, name, obj):
    parts = modname.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    obj.__module__ = modname
    obj.__qualname__ = name
    obj.__name__ = name
    setattr(sys.modules[modname], name, obj)
    return obj


def _fn(*a):
    raise RuntimeError("never called")


reconstruct = fake("torch_utils.persistence", "_reconstruct_persistent_obj", lambda meta: None)
rebuild_tensor = fake("torch._utils", "_rebuild_tensor_v2", lambda *a: None)
rebuild_param = fake("torch._utils", "_rebuild_parameter", lambda *a: None)
load_from_bytes = fake("torch.storage", "_load_from_bytes", lambda b: None)
FloatStorage = fake("torch", "FloatStorage", type("FloatStorage", (), {}))
MAGIC = 0x1950a86a20f9469cfc6c


def dump(name, obj, protocol=4):
    with open(os.path.join(OUT, name), "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


class Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def persistent(class_name, state, src="# networks.py\n"):
    return Reduce(reconstruct, (dict(type="class", version=6, module_src=src, class_name=class_name,
                                     state=state),))


def storage(values, inner_extra=None):
    buf = io.BytesIO()
    for obj in (MAGIC, 1001, dict(protocol_version=1001, little_endian=True,
                                  type_sizes=dict(short=2, int=4, long=4))):
        pickle.dump(obj, buf, protocol=2)
    sentinel = object()

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "k0", "cpu", len(values), None) if obj is sentinel else None

    P(buf, protocol=2).dump(sentinel if inner_extra is None else inner_extra)
    pickle.dump(["k0"], buf, protocol=2)
    buf.write(struct.pack("<q", len(values)))
    buf.write(struct.pack("<%df" % len(values), *values))
    return Reduce(load_from_bytes, (buf.getvalue(),))


def tensor(values, size, stride, offset=0):
    return Reduce(rebuild_tensor, (storage(values), offset, size, stride, False, collections.OrderedDict()))


def module_state(params=None, modules=None, **attrs):
    st = dict(training=False, _parameters=collections.OrderedDict(params or {}),
              _buffers=collections.OrderedDict(), _non_persistent_buffers_set=set(),
              _modules=collections.OrderedDict(modules or {}))
    st.update(attrs)
    return st


def edm(model, **attrs):
    a = dict(img_resolution=8, img_channels=3, label_dim=0, use_fp16=False, sigma_min=0, sigma_max=float("inf"),
             sigma_data=0.5, _init_args=(), _init_kwargs={})
    a.update(attrs)
    return persistent("EDMPrecond", module_state(modules={"model": model}, **a))


touch = "open(%r, 'w').close()" % MARKER
dump("os_system.pkl", dict(ema=Reduce(os.system, ("touch %s" % MARKER,))))
with open(os.path.join(OUT, "exec_proto0.pkl"), "wb") as f:
    f.write(b"cbuiltins\nexec\n(V" + touch.encode() + b"\ntR.")
dump("module_src_exec.pkl", dict(ema=persistent("EDMPrecond", module_state(), src=touch + "\n")))


class Evil:
    def __reduce__(self):
        return (os.system, ("touch %s" % MARKER,))


evil_storage = storage([1.0], inner_extra=Evil())
dump("storage_global.pkl", dict(ema=edm(persistent("SongUNet", module_state(
    params={"w": Reduce(rebuild_tensor, (evil_storage, 0, (1,), (1,), False, collections.OrderedDict()))},
    _init_args=(), _init_kwargs={})))))
dump("unknown_class.pkl", dict(ema=persistent("EvilPrecond", module_state())))
dump("unknown_inner.pkl", dict(ema=edm(persistent("SongUNet", module_state(
    modules={"x": persistent("Backdoor", module_state())}, _init_args=(), _init_kwargs={})))))
dump("oob_tensor.pkl", dict(ema=edm(persistent("SongUNet", module_state(
    params={"w": tensor([1, 2, 3, 4], (100,), (1,))}, _init_args=(), _init_kwargs={})))))
dump("no_ema.pkl", dict(net=1, loss_fn=None))
dump("not_dict.pkl", [1, 2, 3])
with open(os.path.join(OUT, "notapickle.pkl"), "w") as f:
    f.write("this is not a pickle\n")
dump("fake_init_args.pkl", dict(ema=edm(persistent("SongUNet", module_state(
    params={"w": tensor([1, 2, 3, 4, 5, 6], (2, 2), (1, 2), offset=1)},
    _init_args=(8, 3, 3), _init_kwargs=dict(label_dim=0, model_channels=4, channel_mult=[1, 2]))),
    img_resolution=8)))
