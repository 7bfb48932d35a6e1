"""EDM preconditioner + SongUNet in PyTorch, written from shared/edm-spec.md (sections 1.1-1.8,
1.10-1.12 and 2), for training the project's own models.

The module tree mirrors the official one so that `EDMPrecond(...).state_dict()` has exactly the keys,
shapes and order of the official `EDMPrecond(..., model_type='SongUNet')` for the same arguments (spec 1.10,
Appendix A): every module registers its parameters first, then its persistent buffers, then its children,
and optional pieces are simply not created (the official code stores None, which state_dict skips).

Only what training and export need is here: SongUNet (positional or Fourier noise embedding, encoder
standard / skip / residual, decoder standard / skip, any FIR resample filter) under the EDM preconditioner.
Weight initialisation follows the official scheme (xavier-uniform, output layers near zero, attention qkv
scaled by sqrt(0.2)), which matters for training only. Exported weights are read back from state_dict().

Conventions: NCHW, fp32 parameters; every layer casts its weights to the input's dtype, so the network
also runs under torch.autocast.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F


def _init_tensor(shape, mode, fan_in, fan_out, gain):
    """One tensor drawn by the given fan-based rule, times gain (gain 0 gives zeros)."""
    if mode == "xavier_uniform":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        t = (torch.rand(*shape) * 2 - 1) * bound
    elif mode == "xavier_normal":
        t = torch.randn(*shape) * math.sqrt(2.0 / (fan_in + fan_out))
    elif mode == "kaiming_uniform":
        t = (torch.rand(*shape) * 2 - 1) * math.sqrt(3.0 / fan_in)
    elif mode == "kaiming_normal":
        t = torch.randn(*shape) * math.sqrt(1.0 / fan_in)
    else:
        raise ValueError("unknown init mode %r" % (mode,))
    return t * gain


# Initialisation presets of SongUNet (weights only; biases start at zero).
INIT_DEFAULT = dict(mode="xavier_uniform", gain=1.0)
INIT_ZERO = dict(mode="xavier_uniform", gain=1e-5)
INIT_ATTN = dict(mode="xavier_uniform", gain=math.sqrt(0.2))


class Linear(torch.nn.Module):
    """y = x @ weight^T + bias (spec 1.1)."""

    def __init__(self, in_features, out_features, bias=True, init=INIT_DEFAULT):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = torch.nn.Parameter(
            _init_tensor([out_features, in_features], init["mode"], in_features, out_features, init["gain"]))
        if bias:
            self.bias = torch.nn.Parameter(torch.zeros(out_features))
        else:
            self.bias = None

    def forward(self, x):
        w = self.weight.to(x.dtype)
        b = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, w, b)


def _fir_filter(taps):
    """outer(r, r) / sum(r)^2 as a [1, 1, L, L] fp32 tensor (spec 1.2)."""
    r = torch.as_tensor(taps, dtype=torch.float32)
    return (torch.outer(r, r) / r.sum().square()).reshape(1, 1, len(taps), len(taps))


class Conv2d(torch.nn.Module):
    """3x3 / 1x1 convolution with optional FIR up- or down-sampling (spec 1.2).

    kernel 0 makes a pure resampler with no weight and no bias. The standard path resamples first and
    convolves after; fused_resample (used by the residual encoder's aux path) convolves with extra padding
    and then applies an unpadded stride-2 FIR, which is not numerically the same thing.
    """

    def __init__(self, in_channels, out_channels, kernel, bias=True, up=False, down=False,
                 resample_filter=(1, 1), fused_resample=False, init=INIT_DEFAULT):
        super().__init__()
        if up and down:
            raise ValueError("Conv2d cannot both up- and down-sample")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel = kernel
        self.up = up
        self.down = down
        self.fused_resample = fused_resample
        if kernel:
            fan_in = in_channels * kernel * kernel
            fan_out = out_channels * kernel * kernel
            self.weight = torch.nn.Parameter(_init_tensor(
                [out_channels, in_channels, kernel, kernel], init["mode"], fan_in, fan_out, init["gain"]))
            self.bias = torch.nn.Parameter(torch.zeros(out_channels)) if bias else None
        else:
            self.weight = None
            self.bias = None
        if up or down:
            self.register_buffer("resample_filter", _fir_filter(list(resample_filter)))
        else:
            self.resample_filter = None

    def _fir(self, x, channels, scale=1.0):
        f = self.resample_filter.to(x.dtype)
        if scale != 1.0:
            f = f * scale
        return f.expand(channels, 1, f.shape[2], f.shape[3])

    def forward(self, x):
        w = None if self.weight is None else self.weight.to(x.dtype)
        w_pad = self.kernel // 2 if w is not None else 0
        f_pad = (self.resample_filter.shape[-1] - 1) // 2 if self.resample_filter is not None else 0

        if self.fused_resample and self.up and w is not None:
            x = F.conv_transpose2d(x, self._fir(x, self.in_channels, 4.0), groups=self.in_channels,
                                   stride=2, padding=max(f_pad - w_pad, 0))
            x = F.conv2d(x, w, padding=max(w_pad - f_pad, 0))
        elif self.fused_resample and self.down and w is not None:
            x = F.conv2d(x, w, padding=w_pad + f_pad)
            x = F.conv2d(x, self._fir(x, self.out_channels), groups=self.out_channels, stride=2)
        else:
            if self.up:
                x = F.conv_transpose2d(x, self._fir(x, self.in_channels, 4.0), groups=self.in_channels,
                                       stride=2, padding=f_pad)
            if self.down:
                x = F.conv2d(x, self._fir(x, self.in_channels), groups=self.in_channels, stride=2,
                             padding=f_pad)
            if w is not None:
                x = F.conv2d(x, w, padding=w_pad)
        if self.bias is not None:
            x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        return x


class GroupNorm(torch.nn.Module):
    """GroupNorm with G = min(num_groups, C // min_channels_per_group) (spec 1.3)."""

    def __init__(self, num_channels, num_groups=32, min_channels_per_group=4, eps=1e-5):
        super().__init__()
        self.num_groups = min(num_groups, num_channels // min_channels_per_group)
        if self.num_groups < 1 or num_channels % self.num_groups:
            raise ValueError("GroupNorm: %d channels cannot be split into %d groups"
                             % (num_channels, self.num_groups))
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(num_channels))
        self.bias = torch.nn.Parameter(torch.zeros(num_channels))

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)


def attention_weights(q, k):
    """softmax_j(sum_c q[b,c,i] * k[b,c,j] / sqrt(c)) in fp32, cast back to q's dtype (spec 1.4)."""
    c = q.shape[1]
    with torch.autocast(device_type=q.device.type, enabled=False):   # fp32 even under autocast
        logits = torch.einsum("bci,bcj->bij", q.float(), k.float() / math.sqrt(c))
        return logits.softmax(dim=2).to(q.dtype)


class UNetBlock(torch.nn.Module):
    """Residual block with embedding injection and optional self-attention (spec 1.5)."""

    def __init__(self, in_channels, out_channels, emb_channels, up=False, down=False, attention=False,
                 num_heads=None, channels_per_head=64, dropout=0.0, skip_scale=1.0, eps=1e-5,
                 resample_filter=(1, 1), resample_proj=False, adaptive_scale=True,
                 init=INIT_DEFAULT, init_zero=INIT_ZERO, init_attn=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.emb_channels = emb_channels
        if not attention:
            self.num_heads = 0
        elif num_heads is not None:
            self.num_heads = num_heads
        else:
            self.num_heads = out_channels // channels_per_head
        self.dropout = dropout
        self.skip_scale = skip_scale
        self.adaptive_scale = adaptive_scale

        # Registration order is the state_dict order (spec 1.10).
        self.norm0 = GroupNorm(in_channels, eps=eps)
        self.conv0 = Conv2d(in_channels, out_channels, 3, up=up, down=down,
                            resample_filter=resample_filter, init=init)
        self.affine = Linear(emb_channels, out_channels * (2 if adaptive_scale else 1), init=init)
        self.norm1 = GroupNorm(out_channels, eps=eps)
        self.conv1 = Conv2d(out_channels, out_channels, 3, init=init_zero)
        self.skip = None
        if out_channels != in_channels or up or down:
            kernel = 1 if (resample_proj or out_channels != in_channels) else 0
            self.skip = Conv2d(in_channels, out_channels, kernel, up=up, down=down,
                               resample_filter=resample_filter, init=init)
        if self.num_heads:
            self.norm2 = GroupNorm(out_channels, eps=eps)
            self.qkv = Conv2d(out_channels, out_channels * 3, 1, init=init_attn if init_attn else init)
            self.proj = Conv2d(out_channels, out_channels, 1, init=init_zero)

    def forward(self, x, emb):
        shortcut = x
        h = self.conv0(F.silu(self.norm0(x)))
        a = self.affine(emb).unsqueeze(2).unsqueeze(3).to(h.dtype)
        if self.adaptive_scale:
            scale, shift = a.chunk(2, dim=1)
            h = F.silu(torch.addcmul(shift, self.norm1(h), scale + 1))
        else:
            h = F.silu(self.norm1(h + a))
        h = self.conv1(F.dropout(h, p=self.dropout, training=self.training))
        h = (h + (self.skip(shortcut) if self.skip is not None else shortcut)) * self.skip_scale

        if self.num_heads:
            n, c, hh, ww = h.shape
            heads = self.num_heads
            # qkv output channel 3*(head*Ch + c) + j: q, k, v interleaved per channel (spec 1.5, 6.1).
            t = self.qkv(self.norm2(h)).reshape(n * heads, c // heads, 3, hh * ww)
            q, k, v = t[:, :, 0], t[:, :, 1], t[:, :, 2]
            w = attention_weights(q, k)                                   # [B, HW(query), HW(key)]
            o = torch.einsum("bij,bcj->bci", w, v).reshape(n, c, hh, ww)
            h = (self.proj(o) + h) * self.skip_scale
        return h


class PositionalEmbedding(torch.nn.Module):
    """[cos(x f_i) | sin(x f_i)], f_i = (1/max_positions)^(i/(half - endpoint)) (spec 1.6)."""

    def __init__(self, num_channels, max_positions=10000, endpoint=False):
        super().__init__()
        self.num_channels = num_channels
        self.max_positions = max_positions
        self.endpoint = endpoint

    def forward(self, x):
        half = self.num_channels // 2
        i = torch.arange(half, dtype=torch.float32, device=x.device)
        freqs = (1.0 / self.max_positions) ** (i / (half - (1 if self.endpoint else 0)))
        arg = torch.outer(x.to(freqs.dtype), freqs)
        return torch.cat([arg.cos(), arg.sin()], dim=1)


class FourierEmbedding(torch.nn.Module):
    """[cos(2 pi f x) | sin(2 pi f x)] with random buffer f ~ N(0, scale^2) (spec 1.7)."""

    def __init__(self, num_channels, scale=16):
        super().__init__()
        self.register_buffer("freqs", torch.randn(num_channels // 2) * scale)

    def forward(self, x):
        arg = torch.outer(x.to(self.freqs.dtype), (2 * np.pi) * self.freqs)
        return torch.cat([arg.cos(), arg.sin()], dim=1)


class SongUNet(torch.nn.Module):
    """DDPM++ / NCSN++ U-Net (spec 1.8). Argument names and defaults are the official ones."""

    def __init__(self, img_resolution, in_channels, out_channels, label_dim=0, augment_dim=0,
                 model_channels=128, channel_mult=(1, 2, 2, 2), channel_mult_emb=4, num_blocks=4,
                 attn_resolutions=(16,), dropout=0.10, label_dropout=0, embedding_type="positional",
                 channel_mult_noise=1, encoder_type="standard", decoder_type="standard",
                 resample_filter=(1, 1)):
        super().__init__()
        if embedding_type not in ("positional", "fourier"):
            raise ValueError("embedding_type must be positional or fourier")
        if encoder_type not in ("standard", "skip", "residual"):
            raise ValueError("encoder_type must be standard, skip or residual")
        if decoder_type not in ("standard", "skip"):
            raise ValueError("decoder_type must be standard or skip")
        self.img_resolution = img_resolution
        self.label_dim = label_dim
        self.label_dropout = label_dropout
        mc = model_channels
        emb_channels = mc * channel_mult_emb
        noise_channels = mc * channel_mult_noise
        blk = dict(emb_channels=emb_channels, num_heads=1, dropout=dropout, skip_scale=math.sqrt(0.5),
                   eps=1e-6, resample_filter=resample_filter, resample_proj=True, adaptive_scale=False,
                   init=INIT_DEFAULT, init_zero=INIT_ZERO, init_attn=INIT_ATTN)

        # Mapping network.
        if embedding_type == "positional":
            self.map_noise = PositionalEmbedding(noise_channels, endpoint=True)
        else:
            self.map_noise = FourierEmbedding(noise_channels)
        self.map_label = Linear(label_dim, noise_channels) if label_dim else None
        self.map_augment = Linear(augment_dim, noise_channels, bias=False) if augment_dim else None
        self.map_layer0 = Linear(noise_channels, emb_channels)
        self.map_layer1 = Linear(emb_channels, emb_channels)

        # Encoder.
        self.enc = torch.nn.ModuleDict()
        cout = in_channels
        caux = in_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            tag = "%dx%d" % (res, res)
            if level == 0:
                self.enc[tag + "_conv"] = Conv2d(cout, mc, 3)
                cout = mc
            else:
                self.enc[tag + "_down"] = UNetBlock(cout, cout, down=True, **blk)
                if encoder_type == "skip":
                    self.enc[tag + "_aux_down"] = Conv2d(caux, caux, 0, down=True,
                                                         resample_filter=resample_filter)
                    self.enc[tag + "_aux_skip"] = Conv2d(caux, cout, 1)
                if encoder_type == "residual":
                    self.enc[tag + "_aux_residual"] = Conv2d(caux, cout, 3, down=True,
                                                             resample_filter=resample_filter,
                                                             fused_resample=True)
                    caux = cout
            for i in range(num_blocks):
                cin, cout = cout, mc * mult
                self.enc["%s_block%d" % (tag, i)] = UNetBlock(cin, cout, attention=(res in attn_resolutions),
                                                              **blk)
        skip_channels = [m.out_channels for name, m in self.enc.items() if "aux" not in name]

        # Decoder.
        self.dec = torch.nn.ModuleDict()
        for level in reversed(range(len(channel_mult))):
            mult = channel_mult[level]
            res = img_resolution >> level
            tag = "%dx%d" % (res, res)
            if level == len(channel_mult) - 1:
                self.dec[tag + "_in0"] = UNetBlock(cout, cout, attention=True, **blk)
                self.dec[tag + "_in1"] = UNetBlock(cout, cout, **blk)
            else:
                self.dec[tag + "_up"] = UNetBlock(cout, cout, up=True, **blk)
            for i in range(num_blocks + 1):
                cin, cout = cout + skip_channels.pop(), mc * mult
                attn = (i == num_blocks and res in attn_resolutions)
                self.dec["%s_block%d" % (tag, i)] = UNetBlock(cin, cout, attention=attn, **blk)
            if decoder_type == "skip" or level == 0:
                if decoder_type == "skip" and level < len(channel_mult) - 1:
                    self.dec[tag + "_aux_up"] = Conv2d(out_channels, out_channels, 0, up=True,
                                                       resample_filter=resample_filter)
                self.dec[tag + "_aux_norm"] = GroupNorm(cout, eps=1e-6)
                self.dec[tag + "_aux_conv"] = Conv2d(cout, out_channels, 3, init=INIT_ZERO)

    def forward(self, x, noise_labels, class_labels, augment_labels=None):
        # Mapping: [cos | sin] swapped to [sin | cos], plus label and augment embeddings.
        emb = self.map_noise(noise_labels)
        n = emb.shape[0]
        emb = emb.reshape(n, 2, -1).flip(1).reshape(n, -1)
        if self.map_label is not None:
            labels = class_labels
            if self.training and self.label_dropout:
                keep = (torch.rand([x.shape[0], 1], device=x.device) >= self.label_dropout)
                labels = labels * keep.to(labels.dtype)
            emb = emb + self.map_label(labels * math.sqrt(self.map_label.in_features))
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = F.silu(self.map_layer0(emb))
        emb = F.silu(self.map_layer1(emb))

        # Encoder: aux paths overwrite the last skip entry.
        skips = []
        aux = x
        for name, m in self.enc.items():
            if name.endswith("_aux_down"):
                aux = m(aux)
            elif name.endswith("_aux_skip"):
                x = x + m(aux)
                skips[-1] = x
            elif name.endswith("_aux_residual"):
                x = (x + m(aux)) / math.sqrt(2)
                skips[-1] = x
                aux = x
            else:
                x = m(x, emb) if isinstance(m, UNetBlock) else m(x)
                skips.append(x)

        # Decoder: output is the (sum of the) aux_conv outputs.
        aux = None
        tmp = None
        for name, m in self.dec.items():
            if name.endswith("_aux_up"):
                aux = m(aux)
            elif name.endswith("_aux_norm"):
                tmp = m(x)
            elif name.endswith("_aux_conv"):
                tmp = m(F.silu(tmp))
                aux = tmp if aux is None else tmp + aux
            else:
                if x.shape[1] != m.in_channels:
                    x = torch.cat([x, skips.pop()], dim=1)
                x = m(x, emb)
        return aux


class EDMPrecond(torch.nn.Module):
    """D(x; sigma) = c_skip x + c_out F(c_in x; ln(sigma)/4) with SongUNet F (spec 2.1, 2.4)."""

    def __init__(self, img_resolution, img_channels, label_dim=0, use_fp16=False, sigma_min=0,
                 sigma_max=float("inf"), sigma_data=0.5, **model_kwargs):
        super().__init__()
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.label_dim = label_dim
        self.use_fp16 = use_fp16
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.sigma_data = sigma_data
        self.model = SongUNet(img_resolution=img_resolution, in_channels=img_channels,
                              out_channels=img_channels, label_dim=label_dim, **model_kwargs)

    def forward(self, x, sigma, class_labels=None, force_fp32=False, augment_labels=None):
        x = x.to(torch.float32)
        sigma = sigma.to(torch.float32) if torch.is_tensor(sigma) else torch.as_tensor(
            sigma, dtype=torch.float32, device=x.device)
        sigma = sigma.reshape(-1, 1, 1, 1)
        if self.label_dim == 0:
            class_labels = None
        elif class_labels is None:
            class_labels = torch.zeros([1, self.label_dim], device=x.device)
        else:
            class_labels = class_labels.to(torch.float32).reshape(-1, self.label_dim)
        dtype = torch.float16 if (self.use_fp16 and not force_fp32 and x.device.type == "cuda") \
            else torch.float32

        sd = self.sigma_data
        c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)
        c_out = sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
        c_in = 1 / (sd ** 2 + sigma ** 2).sqrt()
        c_noise = sigma.log() / 4

        F_x = self.model((c_in * x).to(dtype), c_noise.flatten(), class_labels,
                         augment_labels=augment_labels)
        return c_skip * x + c_out * F_x.to(torch.float32)

    def round_sigma(self, sigma):
        return torch.as_tensor(sigma)
