"""Check tools/train/model.py against the spec and (optionally) the official PyTorch code.

    /usr/bin/python3 tools/train/test_model.py [--official bench/official]

Without --official: checks the state_dict listing of spec Appendix A.1 (146 tensors, names, shapes,
order) and that the official-code comparison is skipped. With --official DIR: for several SongUNet
configurations (the bundled MNIST one first), builds the official EDMPrecond from DIR/training/networks.py
with the same kwargs, loads our randomised state_dict into it with strict=True (same keys, same order, same
shapes), and compares D(x; sigma, labels) for several sigma in eval mode (max |diff| <= 1e-5 * max|D|).
The official code is only imported here, from the given path; nothing of it is in the repository.
Ends with the line "N passed, N failed, N skipped".
"""

import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as ours  # noqa: E402

PASSED = FAILED = SKIPPED = 0


def check(ok, what):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print("ok   %s" % what)
    else:
        FAILED += 1
        print("FAIL %s" % what)


# (name, EDMPrecond kwargs). The first is the bundled MNIST model's architecture (tools/train/train.py).
CONFIGS = [
    ("mnist_ddpmpp", dict(img_resolution=32, img_channels=1, label_dim=10, model_channels=32,
                          channel_mult=[1, 2, 2], num_blocks=2, attn_resolutions=[16], dropout=0.1)),
    ("mnist_ddpmpp_64", dict(img_resolution=32, img_channels=1, label_dim=10, model_channels=64,
                             channel_mult=[1, 2, 2], num_blocks=2, attn_resolutions=[16], dropout=0.1)),
    ("edm_songunet_ddpmpp", dict(img_resolution=16, img_channels=3, label_dim=0, model_channels=16,
                                 channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8])),
    ("ncsnpp_resid_skip", dict(img_resolution=16, img_channels=3, label_dim=0, model_channels=16,
                               channel_mult=[1, 2, 2], num_blocks=1, attn_resolutions=[8], dropout=0.13,
                               embedding_type="fourier", channel_mult_noise=2, encoder_type="residual",
                               decoder_type="skip", resample_filter=[1, 3, 3, 1])),
    ("skip_enc_aug_cond", dict(img_resolution=16, img_channels=2, label_dim=5, augment_dim=9,
                               model_channels=16, channel_mult=[1, 2], num_blocks=2, attn_resolutions=[16, 8],
                               encoder_type="skip", decoder_type="skip", sigma_data=0.7,
                               resample_filter=[1, 3, 3, 1])),
]


def randomise(net, gen):
    """Give every parameter a non-trivial value (the real init has near-zero output layers)."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
            elif name.endswith("norm0.weight") or name.endswith("norm1.weight") \
                    or name.endswith("norm2.weight") or name.endswith("aux_norm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def appendix_a1():
    torch.manual_seed(0)
    net = ours.EDMPrecond(**CONFIGS[2][1])
    sd = net.state_dict()
    keys = list(sd.keys())
    check(len(keys) == 146, "A.1 edm_songunet_ddpmpp has 146 tensors (got %d)" % len(keys))
    expect_head = [("model.map_layer0.weight", [64, 16]), ("model.map_layer0.bias", [64]),
                   ("model.map_layer1.weight", [64, 64]), ("model.map_layer1.bias", [64]),
                   ("model.enc.16x16_conv.weight", [16, 3, 3, 3])]
    check([(k, list(sd[k].shape)) for k in keys[:5]] == expect_head, "A.1 first five keys and shapes")
    expect_tail = [("model.dec.16x16_aux_norm.weight", [16]), ("model.dec.16x16_aux_norm.bias", [16]),
                   ("model.dec.16x16_aux_conv.weight", [3, 16, 3, 3]), ("model.dec.16x16_aux_conv.bias", [3])]
    check([(k, list(sd[k].shape)) for k in keys[-4:]] == expect_tail, "A.1 last four keys and shapes")
    i = keys.index("model.enc.8x8_down.conv0.bias")
    check(keys[i + 1] == "model.enc.8x8_down.conv0.resample_filter"
          and list(sd[keys[i + 1]].shape) == [1, 1, 2, 2]
          and torch.allclose(sd[keys[i + 1]], torch.full([1, 1, 2, 2], 0.25)),
          "A.1 Conv2d order weight, bias, resample_filter ([1,1] -> 1/4)")
    blk = [k[len("model.enc.8x8_block0."):] for k in keys if k.startswith("model.enc.8x8_block0.")]
    check(blk == ["norm0.weight", "norm0.bias", "conv0.weight", "conv0.bias", "affine.weight", "affine.bias",
                  "norm1.weight", "norm1.bias", "conv1.weight", "conv1.bias", "skip.weight", "skip.bias",
                  "norm2.weight", "norm2.bias", "qkv.weight", "qkv.bias", "proj.weight", "proj.bias"],
          "A.1 UNetBlock order norm0 conv0 affine norm1 conv1 skip norm2 qkv proj")


def compare_official(official_dir):
    sys.path.insert(0, os.path.abspath(official_dir))
    from training import networks as official  # noqa: E402  (test-only import from the given path)

    for name, kw in CONFIGS:
        torch.manual_seed(1)
        mine = ours.EDMPrecond(**kw).eval()
        gen = torch.Generator().manual_seed(2)
        randomise(mine, gen)
        if "fourier" in kw.get("embedding_type", ""):
            with torch.no_grad():
                mine.model.map_noise.freqs.copy_(torch.randn(mine.model.map_noise.freqs.shape, generator=gen) * 16)
        torch.manual_seed(3)
        ref = official.EDMPrecond(model_type="SongUNet", **kw).eval()
        sd_mine = mine.state_dict()
        sd_ref = ref.state_dict()
        check(list(sd_mine.keys()) == list(sd_ref.keys()),
              "%s: state_dict keys and order equal the official (%d tensors)" % (name, len(sd_ref)))
        check(all(sd_mine[k].shape == sd_ref[k].shape for k in sd_ref if k in sd_mine),
              "%s: shapes equal" % name)
        try:
            ref.load_state_dict(sd_mine, strict=True)
            check(True, "%s: official load_state_dict(ours, strict=True)" % name)
        except RuntimeError as e:
            check(False, "%s: official load_state_dict(ours, strict=True): %s" % (name, e))
            continue
        check(all(torch.equal(v, sd_ref[k]) for k, v in ref.state_dict().items() if "resample_filter" in k),
              "%s: resample_filter buffers equal the official ones" % name)

        R, C, L = kw["img_resolution"], kw["img_channels"], kw.get("label_dim", 0)
        A = kw.get("augment_dim", 0)
        g = torch.Generator().manual_seed(4)
        n = 4
        worst = 0.0
        for sigma in [0.002, 0.05, 0.5, 2.0, 20.0, 80.0]:
            y = torch.randn([n, C, R, R], generator=g).clamp(-1, 1)
            x = y + sigma * torch.randn([n, C, R, R], generator=g)
            sig = torch.full([n], sigma) * torch.exp(0.1 * torch.randn([n], generator=g))
            labels = None
            if L:
                labels = torch.nn.functional.one_hot(torch.randint(0, L, [n], generator=g), L).float()
            aug = torch.randn([n, A], generator=g) if A else None
            extra = dict(augment_labels=aug) if A else {}
            with torch.no_grad():
                d_ref = ref(x, sig, labels, **extra)
                d_mine = mine(x, sig, labels, **extra)
            err = (d_ref - d_mine).abs().max().item() / max(d_ref.abs().max().item(), 1e-12)
            worst = max(worst, err)
        check(worst <= 1e-5, "%s: D(x; sigma, labels) matches the official, max rel err %.2e" % (name, worst))

        if L:  # class_labels=None path (zeros row, adds the map_label bias only)
            x = torch.randn([2, C, R, R], generator=g)
            with torch.no_grad():
                err = (ref(x, torch.tensor(1.3)) - mine(x, torch.tensor(1.3))).abs().max().item()
            check(err <= 1e-5, "%s: class_labels=None, scalar sigma, max abs err %.2e" % (name, err))

        # Training mode with dropout 0 must also agree (same forward graph as used by train.py).
        mine.train()
        ref.train()
        for m in (mine, ref):
            for mod in m.modules():
                if hasattr(mod, "dropout"):
                    mod.dropout = 0.0
        x = torch.randn([2, C, R, R], generator=g)
        s = torch.tensor([0.3, 3.0])
        lab = torch.nn.functional.one_hot(torch.tensor([1, 0]), L).float() if L else None
        extra = dict(augment_labels=torch.zeros([2, A])) if A else {}
        with torch.no_grad():
            err = (ref(x, s, lab, **extra) - mine(x, s, lab, **extra)).abs().max().item()
        check(err <= 1e-5, "%s: train mode (dropout 0) max abs err %.2e" % (name, err))


def autocast_smoke():
    """The network runs under CPU bf16 autocast and gives finite values close to fp32."""
    torch.manual_seed(0)
    net = ours.EDMPrecond(**CONFIGS[0][1]).eval()
    randomise(net, torch.Generator().manual_seed(5))
    x = torch.randn([2, 1, 32, 32])
    s = torch.tensor([0.5, 5.0])
    lab = torch.nn.functional.one_hot(torch.tensor([3, 7]), 10).float()
    with torch.no_grad():
        d32 = net(x, s, lab)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            d16 = net(x, s, lab)
    rel = (d32 - d16.float()).abs().max().item() / d32.abs().max().item()
    check(d16.dtype == torch.float32 and torch.isfinite(d16).all().item() and rel < 0.1,
          "bf16 autocast forward: fp32 output, finite, rel diff %.3f" % rel)


def main():
    global SKIPPED
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", default=None, help="path of the official NVlabs/edm checkout")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

    appendix_a1()
    autocast_smoke()
    if args.official:
        if not os.path.isfile(os.path.join(args.official, "training", "networks.py")):
            print("FAIL --official %s has no training/networks.py" % args.official)
            global FAILED
            FAILED += 1
        else:
            compare_official(args.official)
    else:
        SKIPPED += 1
        print("skipped: comparison with the official code (no --official path given)")
    print("%d passed, %d failed, %d skipped" % (PASSED, FAILED, SKIPPED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
