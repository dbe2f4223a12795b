"""ResNet blocks (diffusers `ResnetBlock2D` names) with a temporal conv after each spatial conv, and resamplers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emu_video.models.temporal import TemporalConv


class ResnetBlock(nn.Module):
    def __init__(
        self, in_ch: int, out_ch: int, temb_dim: int, groups: int, eps: float, temporal: bool, kernel_size: int = 3
    ):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch, eps=eps)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_dim, out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch, eps=eps)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None
        if temporal:
            self.temporal_conv1 = TemporalConv(out_ch, kernel_size)
            self.temporal_conv2 = TemporalConv(out_ch, kernel_size)
        else:
            self.temporal_conv1 = self.temporal_conv2 = None

    def forward(self, x: torch.Tensor, temb: torch.Tensor, num_frames: int, use_temporal: bool) -> torch.Tensor:
        temporal = use_temporal and self.temporal_conv1 is not None
        h = self.conv1(F.silu(self.norm1(x)))
        if temporal:
            h = self.temporal_conv1(h, num_frames)
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if temporal:
            h = self.temporal_conv2(h, num_frames)
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return skip + h


class Downsample(nn.Module):
    def __init__(self, channels: int, temporal: bool = False, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.temporal_conv = TemporalConv(channels, kernel_size) if temporal else None

    def forward(self, x: torch.Tensor, num_frames: int = 1, use_temporal: bool = False) -> torch.Tensor:
        x = self.conv(x)
        if use_temporal and self.temporal_conv is not None:
            x = self.temporal_conv(x, num_frames)
        return x


class Upsample(nn.Module):
    def __init__(self, channels: int, temporal: bool = False, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.temporal_conv = TemporalConv(channels, kernel_size) if temporal else None

    def forward(
        self, x: torch.Tensor, num_frames: int = 1, use_temporal: bool = False, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        if size is None or (size[0] == 2 * x.shape[-2] and size[1] == 2 * x.shape[-1]):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=size, mode="nearest")
        x = self.conv(x)
        if use_temporal and self.temporal_conv is not None:
            x = self.temporal_conv(x, num_frames)
        return x
