"""Fused self-attention over short frame sequences: a Triton kernel for CUDA inference.

Temporal self-attention attends over T frames (8 to 37 in Emu Video) at every pixel and head: an
interpolation window at 64x64 latents is 3 x 4096 x 6 = 73,728 sequences of 37 tokens per layer. SDPA's
fused kernels are built for long sequences; here a launch spends most of its time setting up tiles that are
two-thirds empty (2.5 ms per layer against ~0.2 ms of memory traffic, `benchmarks/bench_layers.py`).

This kernel gives each program a few (video, pixel, head) sequences, reads q, k and v where they lie in the
frame-major (B, T, P, C) token layout (no copies), keeps the T x T scores in registers and writes the
output in the same layout. It computes softmax(q k^T / sqrt(d)) v exactly as SDPA does (fp32 scores and
softmax, probabilities rounded to the input dtype for the second product), so outputs agree within the
input dtype's rounding. It has no backward: training keeps SDPA.
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


def supports(x: torch.Tensor, frames: int, head_dim: int) -> bool:
    """Whether the kernel can run this call: CUDA, half precision, no autograd, short sequences."""
    return (
        triton is not None
        and x.is_cuda
        and x.dtype in (torch.bfloat16, torch.float16)
        and frames <= MAX_FRAMES
        and head_dim in HEAD_DIMS
        and not (torch.is_grad_enabled() and x.requires_grad)
    )


if triton is not None:

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
            s = tl.program_id(0) * SEQS + i
            p = (s // heads).to(tl.int64)
            col = (s % heads) * D + d
            # rows of a live sequence; a program's spare slots past the last sequence get no rows
            rows = t[:, None] < frames * (s < num_seqs).to(tl.int32)
            q = tl.load(Q + b * sqb + t[:, None] * sqt + p * sqp + col[None, :], mask=rows, other=0.0)
            k = tl.load(K + b * skb + t[:, None] * skt + p * skp + col[None, :], mask=rows, other=0.0)
            v = tl.load(V + b * svb + t[:, None] * svt + p * svp + col[None, :], mask=rows, other=0.0)
            scores = tl.dot(q, tl.trans(k)) * qk_scale  # log2 units: softmax through exp2
            scores = tl.where(in_t[None, :], scores, float("-inf"))
            m = tl.max(scores, axis=1)
            prob = tl.exp2(scores - m[:, None])
            denom = tl.sum(prob, axis=1)
            out = tl.dot(prob.to(v.dtype), v) / denom[:, None]
            tl.store(O + b * sob + t[:, None] * sot + p * sop + col[None, :], out.to(O.dtype.element_ty), mask=rows)


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


@torch.library.custom_op("emu_video::frames_attention", mutates_args=())
def frames_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Self-attention along dim 1 of (B, T, P, C) tokens, per pixel and head: the output has q's shape
    (contiguous). q, k and v may be strided views (e.g. slices of one projection) with unit stride in C."""
    if triton is None:
        raise RuntimeError("frames_attention needs Triton")
    if q.shape != k.shape or q.shape != v.shape or q.ndim != 4:
        raise ValueError(f"q, k, v must share one (B, T, P, C) shape, got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] % heads:
        raise ValueError(f"{q.shape[-1]} channels do not split into {heads} heads")
    q, k, v = (z if z.stride(-1) == 1 else z.contiguous() for z in (q, k, v))
    return _launch(q, k, v, heads)


@frames_attention.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    return torch.empty(q.shape, dtype=q.dtype, device=q.device)
