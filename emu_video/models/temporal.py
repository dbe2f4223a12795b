"""Temporal layers (Make-A-Video style), identity at initialisation.

Spatial layers see frames as a batch of images, (B*T, C, H, W); temporal layers regroup the same
tensor per pixel across time. A fresh video U-Net therefore equals its text-to-image model frame by frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emu_video.models import frame_conv
from emu_video.models.attention import Attention, FeedForward
from emu_video.models.embeddings import sinusoidal_embedding


class _ChannelsLastGrad(torch.autograd.Function):
    """Identity whose backward hands the gradient on in channels-last memory.

    The temporal convolution's backward runs cuDNN on the (B, C, T, H*W) view of its output gradient, in
    the layout of its input: channels-last. A gradient that arrives in another layout (a compiled region's
    backward chooses its own) is copied first; asking for channels-last here lets the compiler write the
    gradient in that layout where it is produced."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


class TemporalConv(nn.Module):
    """1D convolution over time per pixel (a (k,1,1) Conv3d), initialised to the identity kernel.

    `fast_path` (default on) runs it as a Conv2d on a view (see forward); off, as the Conv3d itself. On CUDA
    inference with half-precision channels-last frames the fast path takes the implicit-GEMM kernel of
    `frame_conv` instead (`conv_kernel`, default on).
    """

    fast_path = True
    conv_kernel = True
    channels_last_grad = True  # training on channels-last frames: see _ChannelsLastGrad

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError("temporal kernel size must be odd")
        self.conv = nn.Conv3d(channels, channels, (kernel_size, 1, 1), padding=(kernel_size // 2, 0, 0))
        self.reset_to_identity()

    @torch.no_grad()
    def reset_to_identity(self) -> None:
        self.conv.weight.zero_()
        k = self.conv.kernel_size[0] // 2
        idx = torch.arange(self.conv.out_channels)
        self.conv.weight[idx, idx, k, 0, 0] = 1.0
        self.conv.bias.zero_()

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        bt, c, h, w = x.shape
        b = bt // num_frames
        if not self.fast_path:
            v = x.view(b, num_frames, c, h, w).transpose(1, 2)  # (B, C, T, H, W)
            v = self.conv(v)
            return v.transpose(1, 2).reshape(bt, c, h, w)
        # The same maths as a (k, 1) Conv2d over (B, C, T, H*W). With channels-last frames, (B*T, H, W, C) in
        # memory, that view is itself channels-last, so neither input nor output is copied.
        weight = self.conv.weight
        if (self.conv_kernel and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
                and frame_conv.preferred(x, weight)):
            return frame_conv.frames_conv(x, weight.flatten(2), self.conv.bias, num_frames)
        v = x.reshape(b, num_frames, c, h * w).transpose(1, 2)
        k = self.conv.kernel_size[0]
        v = F.conv2d(v, self.conv.weight.squeeze(-1), self.conv.bias, padding=(k // 2, 0))
        out = v.transpose(1, 2).reshape(bt, c, h, w)
        if (self.channels_last_grad and out.requires_grad and torch.is_grad_enabled()
                and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()):
            out = _ChannelsLastGrad.apply(out)
        return out


class TemporalTransformerBlock(nn.Module):
    """Self-attention over the frames of each pixel, cross-attention to a text context, a GEGLU MLP.

    The cross-attention gives the trainable video layers their own path to the prompt: the frozen
    spatial layers were trained on image captions and know nothing of motion words.
    """

    def __init__(self, dim: int, heads: int, context_dim: int, ff_mult: int, clause_tokens: int = 0):
        super().__init__()
        self.clause_tokens = int(clause_tokens)
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, context_dim)
        if self.clause_tokens:
            self.norm_clause = nn.LayerNorm(dim)
            self.attn_clause = Attention(dim, heads, context_dim)
            self.reset_clause_attention()
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult)

    @torch.no_grad()
    def reset_clause_attention(self) -> None:
        """Zero the clause attention's output projection: the layer adds nothing until it is trained."""
        nn.init.zeros_(self.attn_clause.to_out[0].weight)
        nn.init.zeros_(self.attn_clause.to_out[0].bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x: (N, T, C), one sequence of frames per row (rows batch-major over the context's rows), or
        (B, T, P, C), the P pixels of each of B videos (context (B, L, D)) — the same maths, no transposes.
        With clause tokens, the last `clause_tokens` rows of the context go to the clause attention only."""
        e = self.clause_tokens
        text, clauses = (context[:, :-e], context[:, -e:]) if e else (context, None)
        if x.ndim == 3:
            x = self.attn1(self.norm1(x)) + x
            x = self.attn2(self.norm2(x), text) + x
            if e:
                x = self.attn_clause(self.norm_clause(x), clauses) + x
            return self.ff(self.norm3(x)) + x
        b, t, p, c = x.shape
        x = self.attn1.forward_frames(self.norm1(x)) + x
        x = self.attn2(self.norm2(x).view(b, t * p, c), text).view(b, t, p, c) + x
        if e:
            x = self.attn_clause(self.norm_clause(x).view(b, t * p, c), clauses).view(b, t, p, c) + x
        return self.ff(self.norm3(x)) + x


class TemporalTransformer(nn.Module):
    """1D attention over time at every pixel; the output projection starts at zero (identity block).

    `fast_path` (default on) keeps the tokens in frame-major order (B, T, H*W, C) — a free view of
    channels-last frames — and attends over time through strided views; off, it regroups them into
    (B*H*W, T, C) sequences (the reference maths).
    """

    fast_path = True

    def __init__(
        self, channels: int, heads: int, context_dims: list[int], groups: int, ff_mult: int = 4, clause_tokens: int = 0
    ):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            TemporalTransformerBlock(channels, heads, d, ff_mult, clause_tokens) for d in context_dims
        )
        self.proj_out = nn.Linear(channels, channels)
        self.reset_to_identity()

    @torch.no_grad()
    def reset_to_identity(self) -> None:
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor, contexts: list[torch.Tensor], num_frames: int) -> torch.Tensor:
        if not self.fast_path:
            return self._forward_reference(x, contexts, num_frames)
        bt, c, h, w = x.shape
        b = bt // num_frames
        residual = x
        y = self.norm(x)
        y = y.permute(0, 2, 3, 1).reshape(b, num_frames, h * w, c)  # a view when x is channels-last
        y = self.proj_in(y)
        pos = sinusoidal_embedding(torch.arange(num_frames, device=x.device), c).to(y.dtype)
        y = y + pos[None, :, None, :]
        for block, context in zip(self.transformer_blocks, contexts):
            y = block(y, context)
        y = self.proj_out(y)
        return residual + y.reshape(bt, h, w, c).permute(0, 3, 1, 2)

    def _forward_reference(self, x: torch.Tensor, contexts: list[torch.Tensor], num_frames: int) -> torch.Tensor:
        bt, c, h, w = x.shape
        b = bt // num_frames
        residual = x
        y = self.norm(x)
        # (B*T, C, H, W) -> (B*H*W, T, C)
        y = y.view(b, num_frames, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, num_frames, c)
        y = self.proj_in(y)
        pos = sinusoidal_embedding(torch.arange(num_frames, device=x.device), c).to(y.dtype)
        y = y + pos[None]
        for block, context in zip(self.transformer_blocks, contexts):
            y = block(y, context)
        y = self.proj_out(y)
        y = y.view(b, h * w, num_frames, c).permute(0, 2, 3, 1).reshape(bt, c, h, w)
        return residual + y
