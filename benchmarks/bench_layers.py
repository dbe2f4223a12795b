"""The paper U-Net's hot layers on their own, each against alternative formulations of the same maths.

    python benchmarks/bench_layers.py --out layers.json

A U-Net step profile (`profile_unet.py`) says which kinds of kernels take the time; this script times
single layers at the shapes of one interpolation window (3 guidance passes x 37 frames of 64x64 latents:
111 frames) so that a faster formulation can be found without compiling the whole network. Every
alternative is checked against the first formulation of its layer (max abs difference in the table).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib_measure import Env, time_steps  # noqa: E402

from emu_video.models import frame_attention, frame_conv  # noqa: E402


def sdpa_with(backend):
    from torch.nn.attention import sdpa_kernel

    def run(q, k, v):
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(q, k, v)

    return run


ATTENTION_LEVELS = ((64, 384), (32, 768))  # (latent side, channels) of the paper U-Net's attention levels
CONV_LEVELS = ((64, 384), (32, 768), (16, 1536))


def attention_cases(frames: int, batch: int, dev, dt, levels=ATTENTION_LEVELS):
    """(name, flops, {variant: fn}) for spatial self-attention, temporal self-attention and cross-attention."""
    from torch.nn.attention import SDPBackend

    backends = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION}
    cases = []
    n_img = batch * frames
    for level, (side, c) in enumerate(levels):
        n, h, d = side * side, c // 64, 64
        qkv = torch.randn(n_img, n, 3 * c, device=dev, dtype=dt)
        q, k, v = (z.view(n_img, n, h, d).transpose(1, 2) for z in qkv.chunk(3, dim=-1))
        qc, kc, vc = (z.contiguous() for z in (q, k, v))
        variants = {}
        for name, be in backends.items():
            f = sdpa_with(be)
            variants[f"{name}, q/k/v views of one projection"] = lambda f=f, q=q, k=k, v=v: f(q, k, v)
            variants[f"{name}, contiguous (B, h, N, d)"] = lambda f=f, q=qc, k=kc, v=vc: f(q, k, v)
        cases.append((f"spatial self-attention, level {level}: {n_img} x {n} tokens, {h} heads", 4 * n_img * n * n * c,
                      variants))
        # temporal self-attention: (B, T, P, C) tokens; heads of all pixels in SDPA's head dimension
        p = n
        x = torch.randn(batch, frames, p, 3 * c, device=dev, dtype=dt)
        tq, tk, tv = x.chunk(3, dim=-1)
        step = 65535 // h

        def frames_attn(fn, q=tq, k=tk, v=tv, p=p, h=h, c=c, step=step):
            outs = []
            for p0 in range(0, p, step):
                p1 = min(p, p0 + step)

                def heads(z):
                    return z[:, :, p0:p1].reshape(batch, frames, (p1 - p0) * h, c // h).transpose(1, 2)

                outs.append(fn(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(batch, frames, p1 - p0, c))
            return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)

        def rows_attn(fn, q=tq, k=tk, v=tv, p=p, h=h, c=c):
            # (B*P*h, T, d) contiguous sequences: one transpose in, one out
            def seq(z):
                return z.reshape(batch, frames, p * h, c // h).permute(0, 2, 1, 3).reshape(batch * p * h, 1, frames, c // h)

            rows = batch * p * h
            qs, ks, vs = seq(q), seq(k), seq(v)
            outs = []
            for r0 in range(0, rows, 65535):
                outs.append(fn(*(z[r0:r0 + 65535].transpose(0, 1) for z in (qs, ks, vs))))
            o = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
            return o.reshape(batch, p * h, frames, c // h).permute(0, 2, 1, 3).reshape(batch, frames, p, c)

        def math_attn(q=tq, k=tk, v=tv, p=p, h=h, c=c):
            def heads(z):
                return z.reshape(batch, frames, p * h, c // h).transpose(1, 2)  # (B, P*h, T, d) view

            s = torch.matmul(heads(q), heads(k).transpose(-1, -2)) * (c // h) ** -0.5
            o = torch.matmul(s.softmax(-1), heads(v))
            return o.transpose(1, 2).reshape(batch, frames, p, c)

        tvariants = {}
        if frame_attention.available():
            tvariants["emu_video frames_attention kernel (Triton)"] = (
                lambda q=tq, k=tk, v=tv, h=h: frame_attention.frames_attention(q, k, v, h))
        for name, be in backends.items():
            f = sdpa_with(be)
            tvariants[f"{name}, strided (B, P*h, T, d) views"] = lambda f=f, g=frames_attn: g(f)
            tvariants[f"{name}, contiguous (B*P*h, T, d)"] = lambda f=f, g=rows_attn: g(f)
        tvariants["matmul + softmax (eager)"] = math_attn
        cases.append((f"temporal self-attention, level {level}: {batch} x {p} pixels x {frames} frames, {h} heads",
                      4 * batch * p * frames * frames * c, tvariants))
    return cases


def temporal_conv_cases(frames: int, batch: int, dev, dt, levels=CONV_LEVELS):
    cases = []
    for level, (side, c) in enumerate(levels):
        hw = side * side
        x = torch.randn(batch * frames, c, side, side, device=dev, dtype=dt).contiguous(memory_format=torch.channels_last)
        w = torch.randn(c, c, 3, 1, device=dev, dtype=dt) * c ** -0.5
        bias = torch.randn(c, device=dev, dtype=dt)
        w2 = w.contiguous(memory_format=torch.channels_last)
        w3 = torch.cat([w[:, :, i, 0] for i in range(3)], dim=0)  # (3C, C): taps stacked

        def conv_view(x=x, w=w2, hw=hw, c=c, side=side, bias=bias):
            v = x.reshape(batch, frames, c, hw).transpose(1, 2)
            return F.conv2d(v, w, bias, padding=(1, 0)).transpose(1, 2).reshape(batch * frames, c, side, side)

        def gemm_shift(x=x, w=w3, hw=hw, c=c, side=side, bias=bias):
            # one GEMM for the three taps, then y[t] = y0[t-1] + y1[t] + y2[t+1] + b
            tok = x.permute(0, 2, 3, 1).reshape(batch, frames, hw, c)
            y = F.linear(tok, w)
            y0, y1, y2 = y.chunk(3, dim=-1)
            out = y1 + bias
            out[:, 1:] += y0[:, :-1]
            out[:, :-1] += y2[:, 1:]
            return out.reshape(batch * frames, side, side, c).permute(0, 3, 1, 2)

        w1 = w.squeeze(-1)

        def implicit_gemm(x=x, w=w1, bias=bias):
            return frame_conv.frames_conv(x, w, bias, frames)

        flops = 2 * batch * frames * hw * c * c * 3
        cases.append((f"temporal conv, level {level}: {batch * frames} frames {side}x{side}, {c} ch", flops,
                      {"(3,1) conv2d on the channels-last view": conv_view,
                       "implicit GEMM kernel (frame_conv)": implicit_gemm,
                       "one GEMM of the 3 taps + shifted adds": gemm_shift}))
        ws = torch.randn(c, c, 3, 3, device=dev, dtype=dt).contiguous(memory_format=torch.channels_last) * c ** -0.5
        cases.append((f"spatial 3x3 conv, level {level} (for scale)", 2 * batch * frames * hw * c * c * 9,
                      {"conv2d channels-last": lambda x=x, ws=ws, bias=bias: F.conv2d(x, ws, bias, padding=1)}))
    return cases


SWEEP_LEVELS = {"paper": ((64, 384), (32, 768), (16, 1536), (8, 1536)), "sd15": ((64, 320), (32, 640), (16, 1280), (8, 1280))}
SWEEP_TILES = ((128, 128, 8), (128, 256, 8), (256, 128, 8), (128, 128, 4), (64, 128, 4), (128, 64, 4), (64, 64, 4))


def conv_sweep_cases(frames: int, batch: int, dev, dt):
    """The implicit-GEMM temporal convolution at each level under several tile configurations, against cuDNN:
    the data behind `frame_conv`'s candidate tiles and its MIN_PIXELS / MIN_ROWS rule."""
    cases = []
    for name, levels in SWEEP_LEVELS.items():
        t = frames if name == "paper" else 16
        for side, c in levels:
            x = torch.randn(batch * t, c, side, side, device=dev, dtype=dt).contiguous(memory_format=torch.channels_last)
            w = torch.randn(c, c, 3, device=dev, dtype=dt) * c ** -0.5
            bias = torch.randn(c, device=dev, dtype=dt)
            w4 = w.unsqueeze(-1).contiguous(memory_format=torch.channels_last)
            hw = side * side

            def cudnn(x=x, w=w4, bias=bias, hw=hw, c=c, side=side, t=t):
                v = x.reshape(batch, t, c, hw).transpose(1, 2)
                return F.conv2d(v, w, bias, padding=(1, 0)).transpose(1, 2).reshape(batch * t, c, side, side)

            variants = {"cuDNN (3,1) conv2d": cudnn,
                        "default": lambda x=x, w=w, bias=bias, t=t: frame_conv._launch(x, w, bias, t)}
            for bm, bn, warps in SWEEP_TILES:
                if bm > max(16, hw) * 2 or c % bn:
                    continue
                for bk, stages in ((64, 3), (64, 4), (64, 5), (128, 3)):
                    if c % bk:
                        continue
                    cfg = {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "num_warps": warps, "num_stages": stages}
                    variants[f"M{bm} N{bn} K{bk} w{warps} s{stages}"] = (
                        lambda x=x, w=w, bias=bias, t=t, cfg=cfg: frame_conv._launch(x, w, bias, t, cfg))
            cases.append((f"{name} temporal conv sweep: {batch * t} frames {side}x{side}, {c} ch",
                          2 * batch * t * hw * c * c * 3, variants))
    return cases


def short_frames_cases(batch: int, dev, dt):
    """Temporal self-attention at the video stage's 16 and 8 frames (level 0)."""
    out = []
    for frames in (16, 8):
        for name, flops, variants in attention_cases(frames, batch, dev, dt, levels=ATTENTION_LEVELS[:1]):
            if name.startswith("temporal"):
                keep = {k: f for k, f in variants.items() if "strided" in k or "kernel" in k}
                out.append((name, flops, keep))
    return out


# (name, frames = batch x frames of the step, latent side, channels) of the GEGLU feed-forwards
GEGLU_SHAPES = (("paper window", 111, 64, 384), ("paper window", 111, 32, 768), ("paper window", 111, 16, 1536),
                ("sd15, 3 x 16 frames", 48, 64, 320), ("sd15, 3 x 16 frames", 48, 32, 640),
                ("sd15, 3 x 16 frames", 48, 16, 1280))


def geglu_cases(dev, dt):
    """GEGLU feed-forward input projections (GEMM, then gelu*mul of its halves) against the GEMM alone: what
    writing the 2 x 4C-wide projection out and reading it back costs."""
    cases = []
    for what, frames, side, c in GEGLU_SHAPES:
        m, inner = frames * side * side, 4 * c
        x = torch.randn(m, c, device=dev, dtype=dt)
        w = torch.randn(2 * inner, c, device=dev, dtype=dt) * c ** -0.5
        b = torch.randn(2 * inner, device=dev, dtype=dt) * 0.1

        def unfused(x=x, w=w, b=b):
            hidden, gate = F.linear(x, w, b).chunk(2, dim=-1)
            return hidden * F.gelu(gate)

        variants = {"linear, then gelu*mul (eager)": unfused,
                    "linear, then gelu*mul (torch.compile)": torch.compile(unfused, dynamic=False),
                    "linear alone (cuBLAS; for scale, not the same output)":
                        lambda x=x, w=w, b=b, inner=inner: F.linear(x, w, b)[:, :inner]}
        cases.append((f"GEGLU projection, {what}: {m} tokens x {c} -> 2 x {inner}", 2 * m * c * 2 * inner, variants))
    return cases


# (name, images = guidance passes x frames, heads, tokens, head size) of the inference steps' spatial
# self-attention: the paper window's two levels and sd15's two largest
FLEX_SHAPES = (("paper window, 64x64", 111, 6, 4096, 64), ("paper window, 32x32", 111, 12, 1024, 64),
               ("sd15 3 x 16 frames, 64x64", 48, 8, 4096, 40), ("sd15 3 x 16 frames, 32x32", 48, 8, 1024, 80))
FLEX_OPTIONS = ({}, {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 8, "num_stages": 3},
                {"BLOCK_M": 128, "BLOCK_N": 64, "num_warps": 4, "num_stages": 3, "USE_TMA": True},
                {"BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 8, "num_stages": 2})


def flex_cases(dev, dt):
    """Spatial self-attention through FlexAttention (Triton, compiled; default and a few tile settings)
    against SDPA's cuDNN and FlashAttention-2 backends: whether a Triton attention beats cuDNN here."""
    from torch.nn.attention import SDPBackend
    from torch.nn.attention.flex_attention import flex_attention

    torch._dynamo.config.cache_size_limit = max(64, torch._dynamo.config.cache_size_limit)  # one compile per row
    cases = []
    for what, images, heads, n, d in FLEX_SHAPES:
        q, k, v = (torch.randn(images, heads, n, d, device=dev, dtype=dt) for _ in range(3))
        variants = {"SDPA cudnn": lambda q=q, k=k, v=v: sdpa_with(SDPBackend.CUDNN_ATTENTION)(q, k, v),
                    "SDPA flash": lambda q=q, k=k, v=v: sdpa_with(SDPBackend.FLASH_ATTENTION)(q, k, v)}
        for options in FLEX_OPTIONS:
            fn = torch.compile(flex_attention, dynamic=False)
            name = "flex_attention " + (", ".join(f"{a}={b}" for a, b in options.items()) or "default")
            variants[name] = lambda fn=fn, q=q, k=k, v=v, o=options: fn(q, k, v, kernel_options=o or None)
        cases.append((f"spatial self-attention, {what}: {images} x {heads} heads x {n} tokens x {d}",
                      4 * images * heads * n * n * d, variants))
    return cases


# (latent side, channels) of the sd15 U-Net's attention levels in the 256px training step (32x32 latents),
# 8 heads each: head sizes 40, 80 and 160
TRAIN_ATTENTION_LEVELS = ((32, 320), (16, 640), (8, 1280))


def train_attention_cases(dev, dt, images: int = 8 * 16, heads: int = 8):
    """Spatial self-attention forward + backward at the sd15 training step's shapes (batch 8 x 16 frames), per
    SDPA backend: the attention of a training step runs at small head sizes, where the backends differ most.
    Each variant returns the query gradient (compared across backends)."""
    from torch.nn.attention import SDPBackend

    backends = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION}
    cases = []
    for side, c in TRAIN_ATTENTION_LEVELS:
        n, d = side * side, c // heads
        q, k, v = (torch.randn(images, heads, n, d, device=dev, dtype=dt, requires_grad=True) for _ in range(3))
        grad = torch.randn(images, heads, n, d, device=dev, dtype=dt)
        variants = {}
        for name, be in backends.items():
            def run(be=be, q=q, k=k, v=v, grad=grad):
                from torch.nn.attention import sdpa_kernel

                q.grad = k.grad = v.grad = None
                with sdpa_kernel([be]):
                    F.scaled_dot_product_attention(q, k, v).backward(grad)
                return q.grad

            variants[f"SDPA {name}, forward + backward"] = run
        flops = 4 * images * heads * n * n * d * 3.5  # forward 2 GEMMs; backward 2.5x the forward
        cases.append((f"training spatial self-attention, {side}x{side} ({n} tokens), {heads} heads x {d}", flops,
                      variants))
    return cases


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=37)
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--only", default="attention,short,conv,geglu",
                   help="comma-separated layer groups: attention, short (16/8-frame temporal attention), conv, "
                        "geglu, train_attention (sd15 training shapes, forward + backward), conv_sweep (tile "
                        "configurations of the implicit-GEMM temporal convolution), flex (FlexAttention against "
                        "SDPA's backends at the inference steps' spatial self-attention shapes)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_layers.py needs a CUDA GPU", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    dev, dt = torch.device("cuda"), torch.bfloat16
    env = Env("cuda", dt)
    results = []
    groups = {"attention": lambda: attention_cases(args.frames, args.batch, dev, dt),
              "short": lambda: short_frames_cases(args.batch, dev, dt),
              "conv": lambda: temporal_conv_cases(args.frames, args.batch, dev, dt),
              "conv_sweep": lambda: conv_sweep_cases(args.frames, args.batch, dev, dt),
              "geglu": lambda: geglu_cases(dev, dt),
              "train_attention": lambda: train_attention_cases(dev, dt),
              "flex": lambda: flex_cases(dev, dt)}
    for key in args.only.split(","):
        if key not in groups:
            p.error(f"unknown layer group {key!r}")
    for key in args.only.split(","):
        with torch.inference_mode(not key.startswith("train")):
            for name, flops, variants in groups[key]():
                print(f"\n{name}  ({flops / 1e12:.2f} TFLOP)", flush=True)
                ref = None
                for vname, fn in variants.items():
                    try:
                        out = fn()
                        diff = (0.0 if ref is None or out.shape != ref.shape
                                else (out.float() - ref.float()).abs().max().item())
                        ref = out if ref is None else ref
                        del out
                        ms = time_steps(env, fn, warmup=3, iters=args.iters, max_seconds=30)["ms"]
                    except Exception as exc:  # noqa: BLE001 - a backend that cannot run these shapes
                        print(f"  {vname:48s} failed: {type(exc).__name__}: {str(exc)[:120]}")
                        results.append({"layer": name, "variant": vname, "error": str(exc)[:300]})
                        continue
                    tf = flops / (ms / 1e3) / 1e12
                    print(f"  {vname:48s} {ms:8.3f} ms  {tf:6.0f} TFLOP/s  max diff {diff:.3g}", flush=True)
                    results.append({"layer": name, "variant": vname, "ms": ms, "tflops": tf, "max_diff": diff})
                del ref
                torch.cuda.empty_cache()
    if args.out:
        args.out.write_text(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                                        "command": " ".join(sys.argv), "rows": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
