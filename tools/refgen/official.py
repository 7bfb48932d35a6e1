"""Helpers shared by the reference generators: load the official NVlabs/edm code from a path
outside the repo, build small official preconditioners with random weights, and export them.

Nothing from the official code is copied here; it is imported from --official at run time.
Requires torch (Debian's python3-torch is enough; CPU only).
"""

import math
import os
import sys
import types
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tools/ -> edmfile
import edmfile  # noqa: E402

PRECOND_CLASS = {"vp": "VPPrecond", "ve": "VEPrecond", "iddpm": "iDDPMPrecond", "edm": "EDMPrecond"}


def import_official(path):
    """Put the official checkout on sys.path and return (networks, loss, generate) modules."""
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, "training", "networks.py")):
        raise SystemExit("error: %s does not look like an NVlabs/edm checkout" % path)
    sys.path.insert(0, path)
    try:
        import tqdm  # noqa: F401  (generate.py imports it; only its CLI uses it)
    except ImportError:
        stub = types.ModuleType("tqdm")
        stub.tqdm = lambda it=None, *a, **k: it
        sys.modules["tqdm"] = stub
    import torch  # noqa: F401
    from training import networks, loss
    import generate
    return networks, loss, generate


def build(networks, precond, img_resolution, img_channels, label_dim=0, use_fp16=False,
          precond_kwargs=None, model_type=None, model_kwargs=None, seed=0):
    """Construct an official preconditioner the way training_loop does (class by name, keyword
    arguments only), then give every learned parameter a random value of a sensible scale
    (random_value: weights ~N(0,1)/sqrt(fan_in), GroupNorm weights ~1+0.1N, biases ~0.1N,
    quantised). Buffers
    (resample_filter, FourierEmbedding.freqs, iDDPM u) stay as constructed. Returns the net in
    eval mode with requires_grad off."""
    import torch
    torch.manual_seed(seed)
    kwargs = dict(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim,
                  use_fp16=use_fp16)
    kwargs.update(precond_kwargs or {})
    if model_type is not None:
        kwargs["model_type"] = model_type
    kwargs.update(model_kwargs or {})
    net = getattr(networks, PRECOND_CLASS[precond])(**kwargs)
    gen = torch.Generator().manual_seed(seed + 12345)
    norm_param_ids = set()
    for mod in net.modules():
        if type(mod).__name__ == "GroupNorm":
            norm_param_ids.add(id(mod.weight))
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(random_value(p.shape, name.endswith("bias"), id(p) in norm_param_ids, gen))
    return net.eval().requires_grad_(False)


def random_value(shape, is_bias, is_norm_weight, gen):
    """A random parameter value, quantised so that it is exact in fp32, fp16 and bf16 and so
    that the committed files compress well in git (about 3 bits of entropy per weight):
      weights:      k * 2^e / 4 with k = round(4 N(0,1)), |k| <= 31, and 2^e the power of two
                    nearest to 1/sqrt(fan_in) (so the std is 1/sqrt(fan_in) within a factor of 1.4)
      norm weights: 1 + k/64 with k = round(6.4 N(0,1)), |k| <= 63
      biases:       k/64 with k = round(6.4 N(0,1)), |k| <= 63
    """
    import torch
    n = torch.randn(shape, generator=gen, dtype=torch.float32)
    if is_bias or is_norm_weight:
        k = (6.4 * n).round().clamp(-63, 63)
        return k / 64 + (1 if is_norm_weight else 0)
    fan_in = 1
    for s in shape[1:]:
        fan_in *= s
    scale = 2.0 ** round(math.log2(1 / math.sqrt(max(fan_in, 1))))
    k = (4 * n).round().clamp(-31, 31)
    return k * (scale / 4)


def official_config(net):
    """edm_config of an official preconditioner, from the object's real attributes and the
    model's recorded constructor kwargs (filled with the spec defaults by edmfile.fill_config)."""
    cls = type(net).__name__
    precond = edmfile.PRECOND_CLASS[cls]
    pk = OrderedDict((k, getattr(net, k)) for k in edmfile.PRECOND_DEFAULTS[precond])
    model = net.model
    mk = dict(model._init_kwargs)
    return edmfile.fill_config(precond, type(model).__name__, net.img_resolution, net.img_channels,
                               net.label_dim, net.use_fp16, pk, mk)


def state_tensors(net):
    """[(name, float32 ndarray)] in state_dict order."""
    return [(k, v.detach().cpu().float().numpy()) for k, v in net.state_dict().items()]


def write_official_model(net, path, metadata=None):
    edmfile.write_model(path, state_tensors(net), official_config(net), metadata or {})
