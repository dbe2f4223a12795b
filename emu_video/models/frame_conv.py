"""The temporal convolution as one implicit GEMM: a Triton kernel for CUDA inference on channels-last frames.

A temporal convolution mixes each pixel's channels across k neighbouring frames: for frames laid out
(B, T, P, C) in memory (channels-last frames of B videos), output frame t is sum_j x[t + j - k//2] @ W_j^T
plus the bias, a GEMM of (P, k*C) by (k*C, C) per frame. cuDNN runs it as a (k, 1) convolution, at about
half the rate of a spatial 3x3 convolution of the same channels (`benchmarks/bench_layers.py`): its kernels
are tuned for small spatial filters, not for one long axis.

Here each program computes a (BLOCK_M pixels, BLOCK_N channels) tile of one output frame. A tile never
spans two frames, so a neighbour frame outside the video (the zero padding) drops whole taps from the
reduction instead of masking rows: frame 0 and frame T-1 do two taps' work, the others three. The
reduction over (tap, input channel) is one loop that Triton pipelines like a plain GEMM; products
accumulate in fp32 and the bias is added before the single rounding to the output dtype.
"""

from __future__ import annotations

import torch

try:  # Triton ships with CUDA builds of PyTorch; CPU-only installs run without this kernel
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None

HALF = (torch.bfloat16, torch.float16)


def available() -> bool:
    return triton is not None


def supports(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the kernel can run on frames `x` (B*T, C, H, W) with a (C_out, C_in, k) weight: CUDA, half
    precision, channels-last memory, channels a multiple of 16 (the GEMM's smallest tile)."""
    return (
        triton is not None
        and x.is_cuda
        and x.dtype in HALF
        and weight.dtype == x.dtype
        and x.ndim == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and x.shape[1] % 16 == 0
        and weight.shape[0] % 16 == 0
    )


# Where the kernel beat cuDNN on an H100 (`bench_layers.py --only conv,conv_sweep`): frames of at least 16x16
# pixels, and enough rows (frames x pixels) to fill the GPU with large tiles. Below that (8x8 frames, or
# 16x16 with few frames) cuDNN's (k, 1) convolution is as fast or faster.
MIN_PIXELS = 256
MIN_ROWS = 16384


def preferred(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether to take the kernel for these frames: it can run (`supports`) and it is faster than cuDNN."""
    return supports(x, weight) and x.shape[2] * x.shape[3] >= MIN_PIXELS and x.shape[0] * x.shape[2] * x.shape[3] >= MIN_ROWS


if triton is not None:

    @triton.jit
    def _frames_conv_kernel(
        X, W, Bias, Y,
        frames, pixels, c_in, c_out, frames_total,  # frames_total (B*T): an autotuning key only
        TAPS: tl.constexpr, HAS_BIAS: tl.constexpr, EVEN_P: tl.constexpr, EVEN_N: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):
        # Programs of one row tile are adjacent (n fastest), so they read its input tiles while in L2.
        tiles_p = tl.cdiv(pixels, BLOCK_M)
        tiles_n = tl.cdiv(c_out, BLOCK_N)
        pid = tl.program_id(0)
        pid_n = pid % tiles_n
        pid_m = pid // tiles_n
        frame = pid_m // tiles_p  # global frame index in [0, B*T)
        t = frame % frames
        rows = (pid_m % tiles_p) * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        ks = tl.arange(0, BLOCK_K)
        half: tl.constexpr = TAPS // 2
        lo = tl.maximum(0, half - t)  # taps whose source frame lies inside the video
        hi = tl.minimum(TAPS, frames + half - t)
        k_tiles = c_in // BLOCK_K
        frame_size = pixels.to(tl.int64) * c_in
        a_rows = X + rows[:, None].to(tl.int64) * c_in + ks[None, :]
        b_cols = W + cols[None, :] * c_in + ks[:, None]  # W laid out (TAPS, C_out, C_in)
        row_mask = rows[:, None] < pixels
        col_mask = cols[None, :] < c_out
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for i in range(lo * k_tiles, hi * k_tiles):
            tap = i // k_tiles
            k0 = (i - tap * k_tiles) * BLOCK_K
            src = (frame + tap - half).to(tl.int64) * frame_size
            if EVEN_P:
                a = tl.load(a_rows + src + k0)
            else:
                a = tl.load(a_rows + src + k0, mask=row_mask, other=0.0)
            w_at = b_cols + (tap * c_out * c_in + k0)
            if EVEN_N:
                b = tl.load(w_at)
            else:
                b = tl.load(w_at, mask=col_mask, other=0.0)
            acc = tl.dot(a, b, acc)
        if HAS_BIAS:
            acc += tl.load(Bias + cols, mask=cols < c_out, other=0.0).to(tl.float32)[None, :]
        out = Y + frame.to(tl.int64) * pixels * c_out + rows[:, None] * c_out + cols[None, :]
        tl.store(out, acc.to(Y.dtype.element_ty), mask=row_mask & col_mask)

    _EVEN = {  # no masks where the tiles divide the frame's pixels / the output channels
        "EVEN_P": lambda meta: meta["pixels"] % meta["BLOCK_M"] == 0,
        "EVEN_N": lambda meta: meta["c_out"] % meta["BLOCK_N"] == 0,
    }

    def _prune(configs, named_args, **kwargs):
        """Keep the tiles that fit the layer: BLOCK_K dividing the input channels (the largest such, the
        smaller ones are for narrow layers), BLOCK_M no larger than the frame needs."""
        c_in, pixels = named_args["c_in"], named_args["pixels"]
        block_k = _block_k(c_in)
        block_m = max(16, triton.next_power_of_2(pixels))
        kept = [c for c in configs if c.kwargs["BLOCK_K"] == block_k and c.kwargs["BLOCK_M"] <= block_m]
        if kept:
            return kept
        cfg = default_config(pixels, c_in, named_args["c_out"])
        warps, stages = cfg.pop("num_warps"), cfg.pop("num_stages")
        return [triton.Config(cfg, num_warps=warps, num_stages=stages)]

    # Candidates, from the sweep: 256x128 tiles won at the paper U-Net's levels, 128x128 at 640 channels,
    # 128x64 at 320; the 16- and 32-wide BLOCK_K entries serve narrow layers.
    _CONFIGS = [
        triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k}, num_warps=w, num_stages=st)
        for m, n, k, w, st in (
            (256, 128, 64, 8, 3), (128, 128, 64, 8, 3), (128, 128, 64, 4, 3), (128, 64, 64, 4, 4), (64, 128, 64, 4, 4),
            (64, 64, 32, 4, 3), (32, 32, 16, 4, 2),
        )
    ]
    _frames_conv_tuned = triton.autotune(
        configs=_CONFIGS, key=["frames_total", "pixels", "c_in", "c_out"], prune_configs_by={"early_config_prune": _prune},
    )(triton.heuristics(_EVEN)(_frames_conv_kernel))


def _block_k(c_in: int) -> int:
    return next(bk for bk in (64, 32, 16) if c_in % bk == 0)


def default_config(pixels: int, c_in: int, c_out: int) -> dict:
    """A fixed tile choice (no autotuning): Triton's interpreter, and the fallback of the autotuner."""
    block_m = min(128, max(16, triton.next_power_of_2(pixels)))
    block_n = 128 if c_out % 128 == 0 else 64 if c_out % 64 == 0 else 32 if c_out % 32 == 0 else 16
    return {"BLOCK_M": block_m, "BLOCK_N": block_n, "BLOCK_K": _block_k(c_in), "num_warps": 8, "num_stages": 3}


def _launch(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, frames: int,
            config: dict | None = None) -> torch.Tensor:
    """Run the kernel. `config` fixes the tiles (BLOCK_M/N/K, num_warps, num_stages); without it CUDA tensors
    take the autotuned choice for their shape (measured once per shape) and others (Triton's interpreter)
    `default_config`."""
    bt, c_in, h, w = x.shape
    c_out, _, taps = weight.shape
    pixels = h * w
    y = torch.empty((bt, c_out, h, w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    w_taps = weight.permute(2, 0, 1).contiguous()  # (taps, C_out, C_in): each tap's rows contiguous in C_in
    args = (x, w_taps, bias if bias is not None else w_taps, y, frames, pixels, c_in, c_out, bt)
    flags = {"TAPS": taps, "HAS_BIAS": bias is not None}
    if config is None and x.is_cuda:
        def grid(meta):
            return (bt * triton.cdiv(pixels, meta["BLOCK_M"]) * triton.cdiv(c_out, meta["BLOCK_N"]),)

        _frames_conv_tuned[grid](*args, **flags)
        return y
    cfg = dict(config or default_config(pixels, c_in, c_out))
    if c_in % cfg["BLOCK_K"]:
        raise ValueError(f"BLOCK_K {cfg['BLOCK_K']} does not divide {c_in} input channels")
    grid = (bt * triton.cdiv(pixels, cfg["BLOCK_M"]) * triton.cdiv(c_out, cfg["BLOCK_N"]),)
    even = {k: f({"pixels": pixels, "c_out": c_out, **cfg}) for k, f in _EVEN.items()}
    _frames_conv_kernel[grid](*args, **flags, **even, **cfg)
    return y


def _check(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, frames: int) -> None:
    if triton is None:
        raise RuntimeError("frames_conv needs Triton")
    if x.ndim != 4 or weight.ndim != 3:
        raise ValueError(f"expected frames (B*T, C, H, W) and a (C_out, C_in, k) weight, got {tuple(x.shape)} and {tuple(weight.shape)}")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight takes {weight.shape[1]} input channels, frames have {x.shape[1]}")
    if weight.shape[2] % 2 != 1:
        raise ValueError(f"temporal kernel size must be odd, got {weight.shape[2]}")
    if frames < 1 or x.shape[0] % frames:
        raise ValueError(f"{x.shape[0]} frames do not split into videos of {frames}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")


@torch.library.custom_op("emu_video::frames_conv", mutates_args=())
def frames_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, frames: int) -> torch.Tensor:
    """Temporal convolution of channels-last frames `x` (B*T, C_in, H, W), videos of `frames` frames each,
    with a (C_out, C_in, k) weight and zero padding in time: the output is (B*T, C_out, H, W), channels-last."""
    _check(x, weight, bias, frames)
    if not x.is_contiguous(memory_format=torch.channels_last):
        x = x.contiguous(memory_format=torch.channels_last)
    return _launch(x, weight, bias, frames)


@frames_conv.register_fake
def _(x, weight, bias, frames):
    bt, _, h, w = x.shape
    return torch.empty((bt, weight.shape[0], h, w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)


def _register_flop_formula() -> None:
    """Count the kernel's FLOPs as FlopCounterMode counts the convolution it replaces (padding included)."""
    try:
        from torch.utils.flop_counter import register_flop_formula
    except ImportError:  # pragma: no cover - older torch
        return

    def flops(x_shape, weight_shape, *args, **kwargs) -> int:
        bt, _, h, w = x_shape
        c_out, c_in, taps = weight_shape
        return 2 * bt * h * w * c_out * c_in * taps

    register_flop_formula(torch.ops.emu_video.frames_conv)(flops)


_register_flop_formula()
