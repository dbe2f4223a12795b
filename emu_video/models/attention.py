"""Spatial attention with diffusers' parameter names: Attention, GEGLU feed-forward, transformer blocks.

A `SpatialTransformer` is laid out like diffusers' `Transformer2DModel` (norm, proj_in,
transformer_blocks, proj_out); its blocks may cross-attend to different text contexts (the paper's
U-Net has two layers per block: one attends to a 768-dim CLIP context, one to a 2048-dim T5 context).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emu_video.models import frame_attention

# Most (batch, heads) pairs one fused-attention launch can take: CUDA grids allow 65535 blocks along y and z.
MAX_SDPA_HEADS = 65535


class Attention(nn.Module):
    """Multi-head attention via PyTorch SDPA (flash / memory-efficient kernels where available).

    `fast_path` (default on) computes q, k, v of self-attention in one GEMM (k, v of cross-attention in
    one) from the concatenated weights; off, three separate projections (the reference maths). Projections
    that are not plain Linear layers (a LoRA adapter wraps them while it trains) always run as their own
    layers: the fused GEMM reads only the Linear weights and would leave the adapters out.
    """

    fast_path = True
    # Temporal self-attention through the fused short-sequence kernel (`frame_attention`) where it can run:
    # CUDA, half-precision projections (inference or training). Part of the fast path.
    frames_kernel = True

    def __init__(self, dim: int, heads: int, context_dim: int | None = None, out_bias: bool = True):
        super().__init__()
        self.heads = heads
        context_dim = context_dim or dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim, bias=out_bias), nn.Dropout(0.0)])

    def fusable(self) -> bool:
        """Whether q, k and v are plain Linear layers, whose weights the fused projection may concatenate."""
        return type(self.to_q) is nn.Linear and type(self.to_k) is nn.Linear and type(self.to_v) is nn.Linear

    def _qkv(self, x: torch.Tensor, context: torch.Tensor | None):
        if not self.fast_path or not self.fusable():
            context = x if context is None else context
            return self.to_q(x), self.to_k(context), self.to_v(context)
        if context is None:
            w = torch.cat([self.to_q.weight, self.to_k.weight, self.to_v.weight])
            return F.linear(x, w).chunk(3, dim=-1)
        k, v = F.linear(context, torch.cat([self.to_k.weight, self.to_v.weight])).chunk(2, dim=-1)
        return self.to_q(x), k, v

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Self-attention, or cross-attention to `context`.

        For cross-attention the query tokens do not interact, so `x` may hold several rows per context
        row (frames or pixels of one video, batch-major): they are regrouped into one long sequence per
        context row instead of repeating the context.
        """
        if context is not None and context.shape[0] != x.shape[0]:
            rows, n, d = x.shape
            out = self.forward(x.reshape(context.shape[0], -1, d), context)
            return out.reshape(rows, n, d)
        b, n, d = x.shape
        h = self.heads
        q, k, v = self._qkv(x, context)
        m = k.shape[1]
        q = q.view(b, n, h, d // h).transpose(1, 2)
        k = k.view(b, m, h, d // h).transpose(1, 2)
        v = v.view(b, m, h, d // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, n, d)
        return self.to_out[1](self.to_out[0](out))

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Self-attention along dim 1 of `x` (B, T, P, C): every (video, pixel) attends over its T frames.

        The tokens stay where they are: heads of all pixels are merged into SDPA's head dimension
        ((B, T, P*h, d) viewed as (B, P*h, T, d)), so no transpose to (B*P, T, C) is needed. Launches are
        split over pixels when P*h would exceed a CUDA grid dimension. On CUDA in half precision (fast path),
        the fused short-sequence kernel of `frame_attention` does the same from views of one projection,
        forward and backward.
        """
        b, t, p, c = x.shape
        h = self.heads
        q = None
        if self.fast_path and self.frames_kernel and self.fusable() and frame_attention.supports(x, t, c // h):
            q, k, v = self._qkv(x, None)  # views of one projection: the kernel reads them where they lie
            if q.dtype in frame_attention.HALF:  # half precision, or float32 tokens under autocast
                return self.to_out[1](self.to_out[0](frame_attention.frames_attention(q, k, v, h)))
        if q is None:
            q, k, v = self.to_q(x), self.to_k(x), self.to_v(x)
        step = max(1, MAX_SDPA_HEADS // h)
        outs = []
        for p0 in range(0, p, step):
            p1 = min(p, p0 + step)
            qh, kh, vh = (z[:, :, p0:p1].reshape(b, t, (p1 - p0) * h, c // h).transpose(1, 2) for z in (q, k, v))
            o = F.scaled_dot_product_attention(qh, kh, vh)
            outs.append(o.transpose(1, 2).reshape(b, t, p1 - p0, c))
        out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
        return self.to_out[1](self.to_out[0](out))


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, inner * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class BasicTransformerBlock(nn.Module):
    """Self-attention, cross-attention to one text context, GEGLU MLP; pre-LayerNorm residuals."""

    def __init__(self, dim: int, heads: int, context_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, context_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """Per-frame transformer over H*W tokens (diffusers `Transformer2DModel` names and maths)."""

    def __init__(
        self, channels: int, heads: int, context_dims: list[int], groups: int, use_linear_projection: bool
    ):
        super().__init__()
        self.use_linear_projection = use_linear_projection
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        if use_linear_projection:
            self.proj_in = nn.Linear(channels, channels)
            self.proj_out = nn.Linear(channels, channels)
        else:
            self.proj_in = nn.Conv2d(channels, channels, 1)
            self.proj_out = nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList(BasicTransformerBlock(channels, heads, c) for c in context_dims)

    def forward(self, x: torch.Tensor, contexts: list[torch.Tensor]) -> torch.Tensor:
        b, c, h, w = x.shape
        residual = x
        x = self.norm(x)
        if self.use_linear_projection:
            x = self.proj_in(x.permute(0, 2, 3, 1).reshape(b, h * w, c))
        else:
            x = self.proj_in(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        for block, context in zip(self.transformer_blocks, contexts):
            x = block(x, context)
        if self.use_linear_projection:
            x = self.proj_out(x).reshape(b, h, w, c).permute(0, 3, 1, 2)
        else:
            x = self.proj_out(x.reshape(b, h, w, c).permute(0, 3, 1, 2))
        return x + residual
