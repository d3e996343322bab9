#!/usr/bin/python3
"""A compact PyTorch-eager ADM U-Net (guided-diffusion's ``UNetModel``), the baseline for tweedie's
benchmarks.

Written for tweedie from the architecture description in shared/fixtures/guided-diffusion/README.md;
the module tree, parameter names and shapes equal guided-diffusion's state dicts, so its
checkpoints and tweedie's safetensors load with ``strict=True``. The arithmetic follows the
reference op for op (einsum attention with ch^-1/4 scaling of q and k, float32 softmax,
scale-first scale-shift norm), so outputs agree with guided-diffusion to float32 round-off.

Deliberate differences (none changes values):
  * ``use_fp16`` is not supported (guided-diffusion only casts the block convs to half).
  * AttentionBlock is not gradient-checkpointed. guided-diffusion always recomputes attention in
    backward; that only trades compute for memory, and the C++ port does not do it either.

Usage:
  adm_unet_reference.py --check-fixture DIR        compare with guided-diffusion's gd_A outputs
  adm_unet_reference.py --save-weights PATH        random shipped-architecture weights, tweedie
                                                   safetensors (config in "tweedie.unet")
  adm_unet_reference.py --bench [--model PATH] [--threads N] [--json OUT]
                                                   per-NFE latency, training images/s and a conv
                                                   throughput microbenchmark, as JSON
Use Debian's /usr/bin/python3 (python3-torch 1.13, numpy).
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------------------------------------------
# Configuration

# UNetModel's constructor arguments and their defaults (None = required, no default).
DEFAULTS = {
    "image_size": None,
    "in_channels": None,
    "model_channels": None,
    "out_channels": None,
    "num_res_blocks": None,
    "attention_resolutions": None,
    "dropout": 0.0,
    "channel_mult": [1, 2, 4, 8],
    "conv_resample": True,
    "dims": 2,
    "num_classes": None,
    "use_checkpoint": False,
    "use_fp16": False,
    "num_heads": 1,
    "num_head_channels": -1,
    "num_heads_upsample": -1,
    "use_scale_shift_norm": False,
    "resblock_updown": False,
    "use_new_attention_order": False,
}

# The Fashion-MNIST prior tweedie ships (1 channel, 32x32, epsilon prediction).
SHIPPED_CONFIG = {
    "image_size": 32,
    "in_channels": 1,
    "model_channels": 32,
    "out_channels": 1,
    "num_res_blocks": 1,
    "attention_resolutions": [2],
    "dropout": 0.0,
    "channel_mult": [1, 2, 2],
    "conv_resample": True,
    "dims": 2,
    "num_classes": None,
    "use_checkpoint": False,
    "use_fp16": False,
    "num_heads": 1,
    "num_head_channels": 32,
    "num_heads_upsample": -1,
    "use_scale_shift_norm": True,
    "resblock_updown": True,
    "use_new_attention_order": False,
}


def parse_config(j):
    """UNetModel kwargs from a JSON object: bare kwargs or {"unet_kwargs": {...}} (as the
    fixtures write it). Comma strings are read as create_model() reads them: channel_mult
    "1,2,2" and attention_resolutions as *pixel* resolutions "16,8" (converted to ds)."""
    if isinstance(j, str):
        j = json.loads(j)
    if "unet_kwargs" in j:
        j = j["unet_kwargs"]
    unknown = set(j) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown U-Net config keys: {sorted(unknown)}")
    cfg = {}
    for k, v in DEFAULTS.items():
        if k in j:
            cfg[k] = j[k]
        elif v is None:
            raise ValueError(f"U-Net config: missing required key {k!r}")
        else:
            cfg[k] = v
    if isinstance(cfg["channel_mult"], str):
        cfg["channel_mult"] = [int(s) for s in cfg["channel_mult"].split(",") if s.strip()]
    if isinstance(cfg["attention_resolutions"], str):
        cfg["attention_resolutions"] = [cfg["image_size"] // int(s)
                                        for s in cfg["attention_resolutions"].split(",") if s.strip()]
    cfg["channel_mult"] = [int(m) for m in cfg["channel_mult"]]
    cfg["attention_resolutions"] = [int(d) for d in cfg["attention_resolutions"]]
    if cfg["num_classes"] == 0:
        cfg["num_classes"] = None
    if cfg["dims"] != 2:
        raise ValueError("only dims=2 is supported")
    if cfg["use_fp16"]:
        raise ValueError("use_fp16 is not supported")
    return cfg


# ------------------------------------------------------------------------------------------------
# Network


class GroupNorm32(nn.GroupNorm):
    """GroupNorm(32, C) computed in float32 (a no-op cast for float32 models)."""

    def __init__(self, channels):
        super().__init__(32, channels, eps=1e-5)

    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


def timestep_embedding(t, dim, max_period=10000):
    """[cos(t f), sin(t f)] with f_k = exp(-ln(max_period) k / half), plus a zero column if dim is
    odd; float32, same operation order as guided-diffusion."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                           device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def zeroed(module):
    for p in module.parameters():
        p.detach().zero_()
    return module


def up2(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


def down2(x):
    return F.avg_pool2d(x, kernel_size=2, stride=2)


class TimestepBlock(nn.Module):
    """A block whose forward also takes the timestep embedding."""


class TimestepEmbedSequential(nn.Sequential):
    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, TimestepBlock) else layer(x)
        return x


class ResBlock(TimestepBlock):
    def __init__(self, channels, emb_channels, dropout, out_channels, use_scale_shift_norm,
                 up=False, down=False):
        super().__init__()
        self.use_scale_shift_norm = use_scale_shift_norm
        self.resample = up2 if up else down2 if down else None
        self.in_layers = nn.Sequential(GroupNorm32(channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm
                                 else out_channels))
        self.out_layers = nn.Sequential(GroupNorm32(out_channels), nn.SiLU(), nn.Dropout(dropout),
                                        zeroed(nn.Conv2d(out_channels, out_channels, 3, padding=1)))
        # UNetModel never asks for a 3x3 skip conv: a channel change is a 1x1 conv.
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))

    def forward(self, x, emb):
        if self.resample is not None:
            # up/down: resample between in_layers' SiLU and its conv, and resample the skip too.
            h = self.in_layers[1](self.in_layers[0](x))
            h = self.in_layers[2](self.resample(h))
            x = self.resample(x)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            norm, rest = self.out_layers[0], self.out_layers[1:]
            scale, shift = torch.chunk(emb_out, 2, dim=1)
            h = rest(norm(h) * (1 + scale) + shift)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class AttentionBlock(TimestepBlock):
    def __init__(self, channels, num_heads, new_order):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"{channels} channels cannot be split into {num_heads} heads")
        self.num_heads = num_heads
        self.new_order = new_order
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = zeroed(nn.Conv1d(channels, channels, 1))

    def attention(self, qkv):
        bs, width, length = qkv.shape
        ch = width // (3 * self.num_heads)
        if self.new_order:   # [q all heads | k | v]
            q, k, v = (p.reshape(bs * self.num_heads, ch, length) for p in qkv.chunk(3, dim=1))
        else:                # legacy: per head [q k v]
            q, k, v = qkv.reshape(bs * self.num_heads, 3 * ch, length).split(ch, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
        a = torch.einsum("bts,bcs->bct", weight, v)
        return a.reshape(bs, -1, length)

    def forward(self, x, emb=None):
        b, c = x.shape[:2]
        x2 = x.reshape(b, c, -1)
        h = self.proj_out(self.attention(self.qkv(self.norm(x2))))
        return (x2 + h).reshape(x.shape)


class Downsample(TimestepBlock):
    def __init__(self, channels, use_conv):
        super().__init__()
        if use_conv:
            self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x, emb=None):
        return self.op(x) if hasattr(self, "op") else down2(x)


class Upsample(TimestepBlock):
    def __init__(self, channels, use_conv):
        super().__init__()
        if use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, emb=None):
        x = up2(x)
        return self.conv(x) if hasattr(self, "conv") else x


class UNetModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        cfg = parse_config(cfg)
        self.config = cfg
        mc = cfg["model_channels"]
        emb_dim = 4 * mc
        heads_up = cfg["num_heads"] if cfg["num_heads_upsample"] == -1 else cfg["num_heads_upsample"]

        def attention(ch, heads):
            if cfg["num_head_channels"] != -1:
                heads = ch // cfg["num_head_channels"]
            return AttentionBlock(ch, heads, cfg["use_new_attention_order"])

        def res(cin, cout, **kw):
            return ResBlock(cin, emb_dim, cfg["dropout"], cout, cfg["use_scale_shift_norm"], **kw)

        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if cfg["num_classes"] is not None:
            self.label_emb = nn.Embedding(cfg["num_classes"], emb_dim)

        ch = cfg["channel_mult"][0] * mc
        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential(nn.Conv2d(cfg["in_channels"], ch, 3, padding=1))])
        skip_chans = [ch]
        ds = 1
        levels = len(cfg["channel_mult"])
        for level, mult in enumerate(cfg["channel_mult"]):
            for _ in range(cfg["num_res_blocks"]):
                layers = [res(ch, mult * mc)]
                ch = mult * mc
                if ds in cfg["attention_resolutions"]:
                    layers.append(attention(ch, cfg["num_heads"]))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_chans.append(ch)
            if level != levels - 1:
                self.input_blocks.append(TimestepEmbedSequential(
                    res(ch, ch, down=True) if cfg["resblock_updown"]
                    else Downsample(ch, cfg["conv_resample"])))
                skip_chans.append(ch)
                ds *= 2
        self.middle_block = TimestepEmbedSequential(res(ch, ch), attention(ch, cfg["num_heads"]),
                                                    res(ch, ch))
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(cfg["channel_mult"]))[::-1]:
            for i in range(cfg["num_res_blocks"] + 1):
                layers = [res(ch + skip_chans.pop(), mult * mc)]
                ch = mult * mc
                if ds in cfg["attention_resolutions"]:
                    layers.append(attention(ch, heads_up))
                if level and i == cfg["num_res_blocks"]:
                    layers.append(res(ch, ch, up=True) if cfg["resblock_updown"]
                                  else Upsample(ch, cfg["conv_resample"]))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.out = nn.Sequential(GroupNorm32(ch), nn.SiLU(),
                                 zeroed(nn.Conv2d(cfg["channel_mult"][0] * mc, cfg["out_channels"],
                                                  3, padding=1)))

    def forward(self, x, timesteps, y=None, trace=None):
        temb = timestep_embedding(timesteps, self.config["model_channels"])
        emb = self.time_embed(temb)
        if trace is not None:
            trace["timestep_embedding"], trace["time_embed"] = temb, emb
        if self.config["num_classes"] is not None:
            emb = emb + self.label_emb(y)
        h = x.type(self.out[2].weight.dtype)
        hs = []
        for i, block in enumerate(self.input_blocks):
            h = block(h, emb)
            hs.append(h)
            if trace is not None:
                trace[f"input_blocks_{i:02d}"] = h
        h = self.middle_block(h, emb)
        if trace is not None:
            trace["middle_block"] = h
        for i, block in enumerate(self.output_blocks):
            h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if trace is not None:
                trace[f"output_blocks_{i:02d}"] = h
        h = self.out(h)
        if trace is not None:
            trace["out"] = h
        return h


def flops_per_image(cfg):
    """2 x multiply-accumulates for one image at image_size, counted as tweedie's
    UNet::flops_per_image counts them: every conv (attention's 1x1 qkv/proj_out included), every
    Linear (time_embed, emb_layers) and attention's two T x T x C products. GroupNorm, SiLU,
    softmax, resampling and additions are not counted."""
    cfg = parse_config(cfg)
    macs = 0.0
    model = UNetModel(cfg)
    hooks = []

    def conv_hook(m, inp, out):
        nonlocal macs
        k = m.weight[0].numel()   # C_in/groups x kernel
        macs += out.numel() * k   # per output element

    def linear_hook(m, inp, out):
        nonlocal macs
        macs += out.numel() * m.in_features

    def attn_hook(m, inp, out):
        nonlocal macs
        b, c = inp[0].shape[:2]
        t = inp[0][0, 0].numel()
        macs += 2.0 * b * t * t * c

    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, AttentionBlock):
            hooks.append(m.register_forward_hook(attn_hook))
    s = cfg["image_size"]
    with torch.no_grad():
        model(torch.zeros(1, cfg["in_channels"], s, s), torch.zeros(1))
    for h in hooks:
        h.remove()
    return 2.0 * macs


# ------------------------------------------------------------------------------------------------
# Weights: tweedie's safetensors (config in metadata "tweedie.unet") and torch.save state dicts

_ST_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
              "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path):
    """(name -> torch tensor, metadata dict) from a safetensors file, parsed with numpy."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        if info["dtype"] not in _ST_DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        dt = np.dtype(_ST_DTYPES[info["dtype"]]).newbyteorder("<")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if not 0 <= begin <= end <= len(body) or end - begin != dt.itemsize * math.prod(shape):
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {begin}..{end}")
        a = np.frombuffer(body[begin:end], dtype=dt).reshape(shape)
        tensors[name] = torch.from_numpy(a.astype(dt.newbyteorder("="), copy=True))
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    entries, blobs, offset = {}, [], 0
    rev = {v: k for k, v in _ST_DTYPES.items()}
    for name in sorted(tensors):
        a = tensors[name].detach().cpu().contiguous().numpy()
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        entries[name] = {"dtype": rev[a.dtype.type], "shape": list(a.shape),
                         "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        entries["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    header = json.dumps(entries, separators=(",", ":")).encode("utf-8")
    header += b" " * (-len(header) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def load_model(path, config=None):
    """UNetModel with weights from `path` (.safetensors written by tweedie, or a torch.save state
    dict), strict. The config comes from `config` (dict/JSON path), else the safetensors metadata
    key "tweedie.unet", else <path without extension>.json."""
    if path.endswith(".safetensors"):
        state, meta = read_safetensors(path)
    else:
        state, meta = torch.load(path, map_location="cpu"), {}
    if isinstance(config, str):
        with open(config) as f:
            config = json.load(f)
    if config is None and "tweedie.unet" in meta:
        config = json.loads(meta["tweedie.unet"])
    if config is None:
        side = os.path.splitext(path)[0] + ".json"
        if not os.path.exists(side):
            raise ValueError(f"{path}: no U-Net config (no 'tweedie.unet' metadata, no {side})")
        with open(side) as f:
            config = json.load(f)
    model = UNetModel(config)
    model.load_state_dict(state, strict=True)
    return model.eval()


def random_model(cfg=SHIPPED_CONFIG, seed=0):
    """Random weights with every parameter perturbed (as the fixtures do), so that the
    zero-initialised output convs do not turn blocks into identities."""
    torch.manual_seed(seed)
    model = UNetModel(cfg)
    with torch.no_grad():
        for v in model.state_dict().values():
            v += 0.05 * torch.randn(v.shape)
    return model.eval()


def save_model(path, model):
    write_safetensors(path, model.state_dict(),
                      {"tweedie.unet": json.dumps(model.config), "format": "pt"})


# ------------------------------------------------------------------------------------------------
# Fixture check


def check_fixture(fixtures):
    """Max abs error of this implementation on guided-diffusion's config-A fixture (and each
    block intermediate)."""
    d = os.path.join(fixtures, "guided-diffusion") if os.path.isdir(
        os.path.join(fixtures, "guided-diffusion")) else fixtures
    with open(os.path.join(d, "gd_A.json")) as f:
        cfg = json.load(f)
    torch.manual_seed(12345)
    model = UNetModel(cfg)
    model.load_state_dict(torch.load(os.path.join(d, "gd_A.pt"), map_location="cpu"), strict=True)
    model.eval()
    x = torch.from_numpy(np.load(os.path.join(d, "gd_A_x.npy")))
    t = torch.from_numpy(np.load(os.path.join(d, "gd_A_t.npy")))
    trace = {}
    with torch.no_grad():
        out = model(x, t, trace=trace)
    errors = {"out": float(np.abs(out.numpy() - np.load(os.path.join(d, "gd_A_out.npy"))).max())}
    for name, v in trace.items():
        ref = os.path.join(d, "gd_A_inter", name + ".npy")
        if os.path.exists(ref):
            errors[name] = float(np.abs(v.numpy() - np.load(ref)).max())
    return errors


# ------------------------------------------------------------------------------------------------
# Benchmarks


def measure(fn, min_time, repetitions, warmup=1):
    """(wall, cpu): the minimum over `repetitions` of the mean wall-clock time per call of `fn`
    (each repetition runs >= min_time seconds), and the minimum process CPU time per call (all
    threads; on a shared machine it shows how much of the wall time was spent waiting)."""
    for _ in range(warmup):
        fn()
    best, best_cpu = float("inf"), float("inf")
    iters = 1
    for _ in range(repetitions):
        while True:
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(iters):
                fn()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if dt >= min_time or iters >= 1 << 20:
                break
            iters = max(iters + 1, min(iters * 10, int(iters * 1.4 * min_time / max(dt, 1e-9))))
        best, best_cpu = min(best, dt / iters), min(best_cpu, dc / iters)
    return best, best_cpu


def conv_bench(channels, res, batch, channels_last, min_time, repetitions):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, res, res, generator=g)
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        conv = conv.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        sec, cpu = measure(lambda: conv(x), min_time, repetitions)
    flops = 2.0 * batch * channels * channels * 9 * res * res
    return {"name": f"conv3x3_c{channels}_r{res}_b{batch}_{'cl' if channels_last else 'nchw'}",
            "seconds": sec, "cpu_seconds": cpu, "gflops": flops / sec / 1e9}


def bench(args):
    torch.set_num_threads(args.threads)
    if args.model:
        model = load_model(args.model)
    else:
        model = random_model()
    cfg = model.config
    fpi = flops_per_image(cfg)
    s, cin = cfg["image_size"], cfg["in_channels"]
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    results = {"implementation": "pytorch-eager" + ("-channels-last" if args.channels_last else ""),
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               "model": args.model or "random shipped config (seed 0)", "config": cfg,
               "num_parameters": sum(p.numel() for p in model.parameters()),
               "flops_per_image": fpi, "min_time": args.min_time,
               "repetitions": args.repetitions, "statistic": "min over repetitions",
               "nfe": {}, "train": {}, "conv": []}
    model.eval()
    if args.compare:
        # Same function as the other implementation: its output for the same inputs.
        x_path, t_path, other_path = args.compare
        x, t = torch.from_numpy(np.load(x_path)), torch.from_numpy(np.load(t_path))
        with torch.inference_mode():
            ours = model(x, t).contiguous().numpy()
        other = np.load(other_path)
        results["check"] = {"max_abs_diff": float(np.abs(ours - other).max()),
                            "max_abs_output": float(np.abs(ours).max()),
                            "shape": list(ours.shape)}
    g = torch.Generator().manual_seed(1)
    for b in args.batches:
        x = torch.randn(b, cin, s, s, generator=g)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        t = torch.randint(0, 1000, (b,), generator=g)
        with torch.inference_mode():
            sec, cpu = measure(lambda: model(x, t), args.min_time, args.repetitions)
        results["nfe"][str(b)] = {"seconds": sec, "cpu_seconds": cpu, "ms": sec * 1e3,
                                  "gflops": fpi * b / sec / 1e9}
    if args.train_batch > 0:
        b = args.train_batch
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x0 = torch.randn(b, cin, s, s, generator=g)
        noise = torch.randn(b, cin, s, s, generator=g)
        t = torch.randint(0, 1000, (b,), generator=g)
        a = torch.rand(b, 1, 1, 1, generator=g)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        if args.channels_last:
            xt = xt.contiguous(memory_format=torch.channels_last)

        def step():
            opt.zero_grad()  # zero-fill, as the C++ API does
            loss = F.mse_loss(model(xt, t)[:, :cin], noise)
            loss.backward()
            opt.step()

        sec, cpu = measure(step, args.train_min_time, args.repetitions)
        # A training step is forward + backward, about 3x the forward's FLOPs.
        results["train"] = {"batch": b, "seconds_per_step": sec, "cpu_seconds_per_step": cpu,
                            "images_per_s": b / sec,
                            "gflops": 3 * fpi * b / sec / 1e9}
    for cl in (False, True):
        results["conv"].append(conv_bench(args.conv_channels, args.conv_res, args.conv_batch, cl,
                                          args.min_time, args.repetitions))
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check-fixture", metavar="DIR")
    p.add_argument("--save-weights", metavar="PATH")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bench", action="store_true")
    p.add_argument("--model", help="weights (.safetensors by tweedie, or .pt state dict)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("TWEEDIE_BENCH_THREADS", 2)))
    p.add_argument("--batches", type=lambda s: [int(v) for v in s.split(",")], default=[1, 16])
    p.add_argument("--train-batch", type=int, default=64)
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--train-min-time", type=float, default=2.0)
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--conv-channels", type=int, default=64)
    p.add_argument("--conv-res", type=int, default=16)
    p.add_argument("--conv-batch", type=int, default=64)
    p.add_argument("--channels-last", action="store_true",
                   help="run the eager model in channels-last memory format (not the default)")
    p.add_argument("--compare", nargs=3, metavar=("X", "T", "OUT"),
                   help="with --bench: report the max abs difference between this model's output "
                        "for inputs X, T (.npy) and OUT (another implementation's output)")
    p.add_argument("--write-inputs", nargs=2, metavar=("X", "T"),
                   help="write a seeded batch of 4 inputs (x, t) for --compare and exit")
    p.add_argument("--json", metavar="OUT", help="write the benchmark JSON here (default stdout)")
    args = p.parse_args(argv)
    if args.check_fixture:
        errors = check_fixture(args.check_fixture)
        for k, v in errors.items():
            print(f"{k:20s} max abs err {v:.3g}")
        return 0 if max(errors.values()) <= 1e-4 else 1
    if args.write_inputs:
        g = torch.Generator().manual_seed(7)
        cfg = load_model(args.model).config if args.model else SHIPPED_CONFIG
        s, c = cfg["image_size"], cfg["in_channels"]
        np.save(args.write_inputs[0], torch.randn(4, c, s, s, generator=g).numpy())
        np.save(args.write_inputs[1], np.array([0, 10, 500, 999], dtype=np.int64))
        return 0
    if args.save_weights:
        save_model(args.save_weights, random_model(seed=args.seed))
        return 0
    if args.bench:
        res = bench(args)
        text = json.dumps(res, indent=2)
        if args.json:
            with open(args.json, "w") as f:
                f.write(text + "\n")
        else:
            print(text)
        return 0
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
