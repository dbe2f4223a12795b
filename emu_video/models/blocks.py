"""U-Net levels: down, mid and up blocks holding ResNets, spatial transformers and their temporal twins.

Block and attribute names follow diffusers (`down_blocks.i.resnets.j`, `.attentions.j`, `.downsamplers.0`,
`mid_block`, `up_blocks.i.upsamplers.0`); temporal transformers sit beside the spatial ones as
`.temporal_attentions.j`.
"""

from __future__ import annotations

import torch
from torch import nn

from emu_video.models.attention import SpatialTransformer
from emu_video.models.config import VideoUNetConfig
from emu_video.models.resnet import Downsample, ResnetBlock, Upsample
from emu_video.models.temporal import TemporalTransformer


def _transformers(cfg: VideoUNetConfig, channels: int, heads: int, count: int) -> tuple[nn.ModuleList, nn.ModuleList | None]:
    contexts = [cfg.context_dim_of_layer(k) for k in range(cfg.transformer_layers_per_block)]
    spatial = nn.ModuleList(
        SpatialTransformer(channels, heads, contexts, cfg.norm_num_groups, cfg.use_linear_projection)
        for _ in range(count)
    )
    temporal = None
    if cfg.temporal_layers:
        t_heads = max(1, channels // cfg.temporal_attention_heads_dim)
        temporal = nn.ModuleList(
            TemporalTransformer(channels, t_heads, contexts, cfg.norm_num_groups, cfg.temporal_ff_mult, cfg.clause_tokens)
            for _ in range(count)
        )
    return spatial, temporal


def _resnet(cfg: VideoUNetConfig, cin: int, cout: int, temb_dim: int) -> ResnetBlock:
    return ResnetBlock(
        cin, cout, temb_dim, cfg.norm_num_groups, cfg.norm_eps, cfg.temporal_layers, cfg.temporal_kernel_size
    )


class _Level(nn.Module):
    """Shared forward of one ResNet (+ transformer, + temporal transformer) step."""

    attentions: nn.ModuleList | None
    temporal_attentions: nn.ModuleList | None

    def __init__(self, cfg: VideoUNetConfig):
        super().__init__()
        self.clause_tokens = cfg.clause_tokens  # trailing context rows that only the temporal layers read

    def _step(self, j: int, h, temb, contexts, num_frames: int, use_temporal: bool):
        h = self.resnets[j](h, temb, num_frames, use_temporal)
        if self.attentions is not None:
            e = self.clause_tokens
            h = self.attentions[j](h, [c[:, :-e] for c in contexts] if e else contexts)
            if use_temporal and self.temporal_attentions is not None:
                h = self.temporal_attentions[j](h, contexts, num_frames)
        return h


class DownBlock(_Level):
    def __init__(self, cfg: VideoUNetConfig, level: int, cin: int, temb_dim: int):
        super().__init__(cfg)
        cout = cfg.block_out_channels[level]
        n = cfg.layers_per_block[level]
        self.resnets = nn.ModuleList(_resnet(cfg, cin if j == 0 else cout, cout, temb_dim) for j in range(n))
        self.attentions = self.temporal_attentions = None
        if cfg.attention_levels[level]:
            self.attentions, self.temporal_attentions = _transformers(cfg, cout, cfg.heads(level), n)
        last = level == len(cfg.block_out_channels) - 1
        self.downsamplers = None if last else nn.ModuleList([Downsample(cout, cfg.temporal_layers, cfg.temporal_kernel_size)])

    def forward(self, h, temb, contexts, num_frames: int, use_temporal: bool, downsample: bool = True):
        """`downsample=False` stops before the downsampler (a shallow pass of deep_cache.py needs only the
        skips of this level)."""
        skips = []
        for j in range(len(self.resnets)):
            h = self._step(j, h, temb, contexts, num_frames, use_temporal)
            skips.append(h)
        if self.downsamplers is not None and downsample:
            h = self.downsamplers[0](h, num_frames, use_temporal)
            skips.append(h)
        return h, skips


class MidBlock(_Level):
    def __init__(self, cfg: VideoUNetConfig, temb_dim: int):
        super().__init__(cfg)
        ch = cfg.block_out_channels[-1]
        self.resnets = nn.ModuleList([_resnet(cfg, ch, ch, temb_dim), _resnet(cfg, ch, ch, temb_dim)])
        self.attentions, self.temporal_attentions = _transformers(cfg, ch, cfg.heads(len(cfg.block_out_channels) - 1), 1)

    def forward(self, h, temb, contexts, num_frames: int, use_temporal: bool):
        h = self._step(0, h, temb, contexts, num_frames, use_temporal)
        return self.resnets[1](h, temb, num_frames, use_temporal)


class UpBlock(_Level):
    def __init__(self, cfg: VideoUNetConfig, index: int, prev_out: int, temb_dim: int):
        super().__init__(cfg)
        n_levels = len(cfg.block_out_channels)
        level = n_levels - 1 - index
        cout = cfg.block_out_channels[level]
        skip_in = cfg.block_out_channels[max(level - 1, 0)]
        n = cfg.layers_per_block[level] + 1
        self.resnets = nn.ModuleList(
            _resnet(cfg, (prev_out if j == 0 else cout) + (skip_in if j == n - 1 else cout), cout, temb_dim)
            for j in range(n)
        )
        self.attentions = self.temporal_attentions = None
        if cfg.attention_levels[level]:
            self.attentions, self.temporal_attentions = _transformers(cfg, cout, cfg.heads(level), n)
        self.upsamplers = None if level == 0 else nn.ModuleList([Upsample(cout, cfg.temporal_layers, cfg.temporal_kernel_size)])

    def forward(self, h, skips: list[torch.Tensor], temb, contexts, num_frames: int, use_temporal: bool, size=None):
        """`skips`: this block's skip connections in the order the down path made them (used last-first);
        `size`: spatial size to upsample to (the next block's skips), for latents not divisible by 2^levels."""
        for j in range(len(self.resnets)):
            h = torch.cat([h, skips[-1 - j]], dim=1)
            h = self._step(j, h, temb, contexts, num_frames, use_temporal)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h, num_frames, use_temporal, size)
        return h
