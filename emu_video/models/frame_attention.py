"""Fused self-attention over short frame sequences: a Triton kernel for CUDA inference.

Temporal self-attention attends over T frames (8 to 37 in Emu Video) at every pixel and head: an
interpolation window at 64x64 latents is 3 x 4096 x 6 = 73,728 sequences of 37 tokens per layer. SDPA's
fused kernels are built for long sequences; here a launch spends most of its time setting up tiles that are
two-thirds empty (2.5 ms per layer against ~0.2 ms of memory traffic, `benchmarks/bench_layers.py`).

This kernel gives each program a few (video, pixel, head) sequences, reads q, k and v where they lie in the
frame-major (B, T, P, C) token layout (no copies), keeps the T x T scores in registers and writes the
output in the same layout. It computes softmax(q k^T / sqrt(d)) v exactly as SDPA does (fp32 scores and
softmax, probabilities rounded to the input dtype for the second product), so outputs agree within the
input dtype's rounding.

Its backward is a second kernel of the same shape: it recomputes the probabilities from q and k (a T x T
tile is cheaper to recompute than to store) and writes dq, dk and dv in one pass, with the same fp32
softmax and input-dtype products as FlashAttention's backward. SDPA's fused backward kernels are built for
long sequences too, so training gains as much as inference.
"""

from __future__ import annotations

import math

import torch

try:  # Triton ships with CUDA builds of PyTorch; CPU-only installs run without this kernel
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None

MAX_FRAMES = 128
HEAD_DIMS = (16, 32, 64, 128)


def available() -> bool:
    return triton is not None


HALF = (torch.bfloat16, torch.float16)


def supports(x: torch.Tensor, frames: int, head_dim: int) -> bool:
    """Whether the kernel can run on tokens like `x`: CUDA, short sequences, a head size it is built for.

    The projections must be half precision too; the caller checks their dtype (under autocast, float32
    tokens give bfloat16 projections)."""
    return triton is not None and x.is_cuda and frames <= MAX_FRAMES and head_dim in HEAD_DIMS


if triton is not None:

    @triton.jit
    def _sequence(s, heads, frames, num_seqs, t, d, D: tl.constexpr):
        """Sequence `s` (pixel s // heads, head s % heads): its pixel, its channel columns, and the mask
        of its rows (none for a program's spare slots past the last sequence)."""
        p = (s // heads).to(tl.int64)
        col = (s % heads) * D + d
        rows = t[:, None] < frames * (s < num_seqs).to(tl.int32)
        return p, col, rows

    @triton.jit
    def _tile(X, b, p, t, col, rows, sb, st, sp):
        """The (T, D) tile of one sequence of a (B, T, P, C) tensor with strides sb, st, sp (and 1)."""
        return tl.load(X + b * sb + t[:, None] * st + p * sp + col[None, :], mask=rows, other=0.0)

    @triton.jit
    def _scores(q, k, qk_scale, in_t):
        """q k^T in log2 units (softmax through exp2), -inf on the padded key columns."""
        scores = tl.dot(q, tl.trans(k)) * qk_scale
        return tl.where(in_t[None, :], scores, float("-inf"))

    @triton.jit
    def _frames_attention_kernel(
        Q, K, V, O,
        sqb, sqt, sqp, skb, skt, skp, svb, svt, svp, sob, sot, sop,
        num_seqs, heads, frames, qk_scale,
        D: tl.constexpr, BLOCK_T: tl.constexpr, SEQS: tl.constexpr,
    ):
        b = tl.program_id(1).to(tl.int64)
        t = tl.arange(0, BLOCK_T)
        d = tl.arange(0, D)
        in_t = t < frames
        for i in tl.static_range(SEQS):
            p, col, rows = _sequence(tl.program_id(0) * SEQS + i, heads, frames, num_seqs, t, d, D)
            q = _tile(Q, b, p, t, col, rows, sqb, sqt, sqp)
            k = _tile(K, b, p, t, col, rows, skb, skt, skp)
            v = _tile(V, b, p, t, col, rows, svb, svt, svp)
            scores = _scores(q, k, qk_scale, in_t)
            m = tl.max(scores, axis=1)
            prob = tl.exp2(scores - m[:, None])
            denom = tl.sum(prob, axis=1)
            out = tl.dot(prob.to(v.dtype), v) / denom[:, None]
            tl.store(O + b * sob + t[:, None] * sot + p * sop + col[None, :], out.to(O.dtype.element_ty), mask=rows)

    @triton.jit
    def _frames_attention_bwd_kernel(
        Q, K, V, DO, DQ, DK, DV,
        sqb, sqt, sqp, skb, skt, skp, svb, svt, svp, sdb, sdt, sdp, sgb, sgt, sgp,
        num_seqs, heads, frames, qk_scale, sm_scale,
        D: tl.constexpr, BLOCK_T: tl.constexpr, SEQS: tl.constexpr,
    ):
        b = tl.program_id(1).to(tl.int64)
        t = tl.arange(0, BLOCK_T)
        d = tl.arange(0, D)
        in_t = t < frames
        for i in tl.static_range(SEQS):
            p, col, rows = _sequence(tl.program_id(0) * SEQS + i, heads, frames, num_seqs, t, d, D)
            q = _tile(Q, b, p, t, col, rows, sqb, sqt, sqp)
            k = _tile(K, b, p, t, col, rows, skb, skt, skp)
            v = _tile(V, b, p, t, col, rows, svb, svt, svp)
            do = _tile(DO, b, p, t, col, rows, sdb, sdt, sdp)
            scores = _scores(q, k, qk_scale, in_t)
            prob = tl.exp2(scores - tl.max(scores, axis=1)[:, None])
            prob = prob / tl.sum(prob, axis=1)[:, None]
            # padded query rows have do = 0, so they add nothing to dv and get ds = 0
            dv = tl.dot(tl.trans(prob.to(do.dtype)), do)
            dprob = tl.dot(do, tl.trans(v))
            ds = prob * (dprob - tl.sum(prob * dprob, axis=1)[:, None])
            dq = tl.dot(ds.to(k.dtype), k) * sm_scale
            dk = tl.dot(tl.trans(ds.to(q.dtype)), q) * sm_scale
            at = b * sgb + t[:, None] * sgt + p * sgp + col[None, :]
            tl.store(DQ + at, dq.to(DQ.dtype.element_ty), mask=rows)
            tl.store(DK + at, dk.to(DK.dtype.element_ty), mask=rows)
            tl.store(DV + at, dv.to(DV.dtype.element_ty), mask=rows)


def _launch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    b, t, p, c = q.shape
    head_dim = c // heads
    out = torch.empty((b, t, p, c), dtype=q.dtype, device=q.device)
    block_t = max(16, triton.next_power_of_2(t))
    seqs = max(1, 64 // block_t)  # a program handles ~64 query rows
    num_seqs = p * heads
    grid = (triton.cdiv(num_seqs, seqs), b)
    _frames_attention_kernel[grid](
        q, k, v, out,
        q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2), out.stride(0), out.stride(1), out.stride(2),
        num_seqs, heads, t, (1.0 / math.sqrt(head_dim)) * math.log2(math.e),
        D=head_dim, BLOCK_T=block_t, SEQS=seqs, num_warps=4 if block_t * head_dim <= 4096 else 8,
    )
    return out


def _launch_backward(q, k, v, grad, heads):
    b, t, p, c = q.shape
    head_dim = c // heads
    dq, dk, dv = (torch.empty((b, t, p, c), dtype=q.dtype, device=q.device) for _ in range(3))
    block_t = max(16, triton.next_power_of_2(t))
    seqs = max(1, 32 // block_t)
    num_seqs = p * heads
    grid = (triton.cdiv(num_seqs, seqs), b)
    _frames_attention_bwd_kernel[grid](
        q, k, v, grad, dq, dk, dv,
        q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2), grad.stride(0), grad.stride(1), grad.stride(2),
        dq.stride(0), dq.stride(1), dq.stride(2),
        num_seqs, heads, t, (1.0 / math.sqrt(head_dim)) * math.log2(math.e), 1.0 / math.sqrt(head_dim),
        D=head_dim, BLOCK_T=block_t, SEQS=seqs, num_warps=4 if block_t * head_dim <= 2048 else 8,
    )
    return dq, dk, dv


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> None:
    if triton is None:
        raise RuntimeError("frames_attention needs Triton")
    if q.shape != k.shape or q.shape != v.shape or q.ndim != 4:
        raise ValueError(f"q, k, v must share one (B, T, P, C) shape, got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] % heads:
        raise ValueError(f"{q.shape[-1]} channels do not split into {heads} heads")


def _unit_stride(*zs: torch.Tensor):
    return tuple(z if z.stride(-1) == 1 else z.contiguous() for z in zs)


@torch.library.custom_op("emu_video::frames_attention", mutates_args=())
def frames_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Self-attention along dim 1 of (B, T, P, C) tokens, per pixel and head: the output has q's shape
    (contiguous). q, k and v may be strided views (e.g. slices of one projection) with unit stride in C."""
    _check(q, k, v, heads)
    return _launch(*_unit_stride(q, k, v), heads)


@frames_attention.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    return torch.empty(q.shape, dtype=q.dtype, device=q.device)


@torch.library.custom_op("emu_video::frames_attention_backward", mutates_args=())
def frames_attention_backward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grad: torch.Tensor, heads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients (dq, dk, dv) of `frames_attention` for the output gradient `grad` (all (B, T, P, C))."""
    _check(q, k, v, heads)
    if grad.shape != q.shape:
        raise ValueError(f"grad has shape {tuple(grad.shape)}, expected {tuple(q.shape)}")
    return _launch_backward(*_unit_stride(q, k, v, grad), heads)


@frames_attention_backward.register_fake
def _(q, k, v, grad, heads):
    return tuple(torch.empty(q.shape, dtype=q.dtype, device=q.device) for _ in range(3))


def _setup_context(ctx, inputs, output):
    q, k, v, heads = inputs
    ctx.save_for_backward(q, k, v)
    ctx.heads = heads


def _backward(ctx, grad):
    q, k, v = ctx.saved_tensors
    dq, dk, dv = frames_attention_backward(q, k, v, grad, ctx.heads)
    return dq, dk, dv, None


frames_attention.register_autograd(_backward, setup_context=_setup_context)


def _register_flop_formulas() -> None:
    """Count the kernels' FLOPs as FlopCounterMode counts SDPA's: 2 matmuls forward, 5 backward (the scores
    are recomputed), so FLOP rates of steps through the kernel compare with steps through SDPA."""
    try:
        from torch.utils.flop_counter import register_flop_formula
    except ImportError:  # pragma: no cover - older torch
        return

    def forward_flops(q_shape, *args, **kwargs) -> int:
        b, t, p, c = q_shape
        return 4 * b * p * t * t * c

    register_flop_formula(torch.ops.emu_video.frames_attention)(forward_flops)
    register_flop_formula(torch.ops.emu_video.frames_attention_backward)(
        lambda q_shape, *args, **kwargs: forward_flops(q_shape) * 5 // 2
    )


_register_flop_formulas()
