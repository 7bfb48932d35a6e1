#!/usr/bin/python3
"""Make the committed converter test pickles with the official NVlabs/edm code (needs torch).

    /usr/bin/python3 tests/converter/make_pickles.py --official bench/official --out tests/converter/pickles

Each pickle is a network-snapshot-style dict, built and pickled the way training_loop does it:
dict(ema=<preconditioner, deep-copied, eval, requires_grad off, cpu>, loss_fn=<VP/VE/EDMLoss>,
augment_pipe=None, dataset_kwargs=dict(...)), networks constructed with
dnnlib.util.construct_class_by_name(**network_kwargs, **interface_kwargs) like train.py.
Next to each NAME.pkl goes NAME.expected.json: the expected edm_config (from the kwargs passed
here, defaults filled by edmfile.fill_config, and checked against the object's own attributes)
and, in state_dict order, every tensor's name, shape and the SHA-256 of its little-endian fp32
bytes. The tests compare the converter's output with these without needing torch.
Weights are random (official.random_value), so zero-initialised layers are not trivially equal.
"""

import argparse
import copy
import hashlib
import json
import os
import pickle
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "refgen"))
import official  # noqa: E402
import edmfile  # noqa: E402

# name: (network_kwargs as train.py would build them, interface_kwargs, loss class, pickle protocol)
PICKLES = {
    "vp_ddpmpp_cond": (
        dict(class_name="training.networks.VPPrecond", model_type="SongUNet", embedding_type="positional",
             encoder_type="standard", decoder_type="standard", channel_mult_noise=1, resample_filter=[1, 1],
             model_channels=4, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4], augment_dim=9,
             dropout=0.13, use_fp16=False, beta_min=0.2),
        dict(img_resolution=8, img_channels=3, label_dim=10), "VPLoss", pickle.DEFAULT_PROTOCOL),
    "ve_ncsnpp_uncond": (
        dict(class_name="training.networks.VEPrecond", model_type="SongUNet", embedding_type="fourier",
             encoder_type="residual", decoder_type="standard", channel_mult_noise=2,
             resample_filter=[1, 3, 3, 1], model_channels=4, channel_mult=[1, 2], num_blocks=1,
             attn_resolutions=[4], dropout=0.05, use_fp16=False, sigma_max=50.0),
        dict(img_resolution=8, img_channels=1, label_dim=0), "VELoss", pickle.DEFAULT_PROTOCOL),
    "edm_adm_cond_fp16": (
        dict(class_name="training.networks.EDMPrecond", model_type="DhariwalUNet", model_channels=4,
             channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4], dropout=0.1, use_fp16=True),
        dict(img_resolution=8, img_channels=3, label_dim=5), "EDMLoss", pickle.DEFAULT_PROTOCOL),
    # The baselines were converted by NVIDIA; protocol 2 exercises the _codecs/set paths.
    "iddpm_adm_proto2": (
        dict(class_name="training.networks.iDDPMPrecond", model_type="DhariwalUNet", model_channels=4,
             channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4], dropout=0.1),
        dict(img_resolution=8, img_channels=3, label_dim=0), "EDMLoss", 2),
}


def tensor_digest(a):
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f4").tobytes()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    networks, loss, _generate = official.import_official(args.official)
    import torch
    import dnnlib
    os.makedirs(args.out, exist_ok=True)
    for i, (name, (network_kwargs, interface_kwargs, loss_name, protocol)) in enumerate(PICKLES.items()):
        torch.manual_seed(100 + i)
        net = dnnlib.util.construct_class_by_name(**network_kwargs, **interface_kwargs)
        gen = torch.Generator().manual_seed(200 + i)
        norm_ids = {id(m.weight) for m in net.modules() if type(m).__name__ == "GroupNorm"}
        with torch.no_grad():
            for pname, p in net.named_parameters():
                p.copy_(official.random_value(p.shape, pname.endswith("bias"), id(p) in norm_ids, gen))
        net.train().requires_grad_(False)
        ema = copy.deepcopy(net).eval().requires_grad_(False)
        dataset_kwargs = dict(class_name="training.dataset.ImageFolderDataset", path="datasets/toy.zip",
                              use_labels=bool(interface_kwargs["label_dim"]), xflip=False, cache=True,
                              resolution=interface_kwargs["img_resolution"], max_size=100)
        data = dict(ema=ema, loss_fn=getattr(loss, loss_name)(), augment_pipe=None,
                    dataset_kwargs=dict(dataset_kwargs))
        for key, value in data.items():
            if isinstance(value, torch.nn.Module):
                data[key] = copy.deepcopy(value).eval().requires_grad_(False).cpu()
        with open(os.path.join(args.out, name + ".pkl"), "wb") as f:
            pickle.dump(data, f, protocol=protocol)

        # Expected config from what was passed here (not from the object) ...
        kw = {k: v for k, v in network_kwargs.items() if k != "class_name"}
        precond = edmfile.PRECOND_CLASS[network_kwargs["class_name"].rsplit(".", 1)[1]]
        pk = {k: kw.pop(k) for k in list(kw) if k in edmfile.PRECOND_DEFAULTS[precond]}
        model_type, use_fp16 = kw.pop("model_type"), kw.pop("use_fp16", False)
        cfg = edmfile.fill_config(precond, model_type, interface_kwargs["img_resolution"],
                                  interface_kwargs["img_channels"], interface_kwargs["label_dim"],
                                  use_fp16, pk, kw)
        # ... which must agree with the object's own attributes.
        assert cfg == official.official_config(data["ema"]), name
        sd = data["ema"].state_dict()
        expected = {"config": edmfile._encode_inf(cfg),
                    "tensors": [[k, list(v.shape), tensor_digest(v.numpy())] for k, v in sd.items()]}
        with open(os.path.join(args.out, name + ".expected.json"), "w") as f:
            json.dump(expected, f, indent=1)
            f.write("\n")
        print("%-22s %3d tensors %7d params  %7d bytes" % (
            name, len(sd), sum(v.numel() for v in sd.values()), os.path.getsize(os.path.join(args.out, name + ".pkl"))))


if __name__ == "__main__":
    main()
