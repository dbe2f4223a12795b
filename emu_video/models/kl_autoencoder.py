"""A KL autoencoder that reads diffusers `AutoencoderKL` folders without importing diffusers.

Importing diffusers' autoencoder pulls in most of diffusers, transformers, peft and torch._dynamo: about
4 s on a laptop-class CPU, more than the rest of the demo's start-up. The inference pipelines only need the
network, which is small: convolutional encoder and decoder of ResNet blocks (GroupNorm, SiLU, 3x3
convolutions), one single-head self-attention block in the middle of each, 2x resampling between levels,
and 1x1 convolutions on the latent moments. This module builds it with the parameter names of diffusers'
checkpoints, so `load_state_dict` reads their files as they are, and computes the same function (checked
against diffusers in tests/models/test_kl_autoencoder.py).

Folders this module cannot represent exactly (other block types, activations or parameter names) are loaded
with diffusers instead (`FrameAutoencoder.from_pretrained` decides with `supports`).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["KLAutoencoder", "supports"]

_DOWN, _UP = "DownEncoderBlock2D", "UpDecoderBlock2D"
_EPS = 1e-6  # every GroupNorm of the autoencoder


def supports(config: dict[str, Any]) -> bool:
    """Whether a diffusers `AutoencoderKL` config.json describes a network this module builds exactly."""
    return (
        config.get("_class_name", "AutoencoderKL") == "AutoencoderKL"
        and config.get("act_fn", "silu") == "silu"
        and all(t == _DOWN for t in config.get("down_block_types", [_DOWN]))
        and all(t == _UP for t in config.get("up_block_types", [_UP]))
        and len(config.get("down_block_types", [_DOWN])) == len(config.get("block_out_channels", [64]))
        and config.get("latents_mean") is None and config.get("latents_std") is None
    )


class _Resnet(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=_EPS)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=_EPS)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))  # dropout 0 at inference
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class _SelfAttention(nn.Module):
    """One head over all H*W positions, with a residual connection."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=_EPS)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(0.0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)
        q, k, v = (proj(tokens)[:, None] for proj in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v)[:, 0]
        out = self.to_out[0](out)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class _Mid(nn.Module):
    def __init__(self, channels: int, groups: int, attention: bool):
        super().__init__()
        self.resnets = nn.ModuleList([_Resnet(channels, channels, groups), _Resnet(channels, channels, groups)])
        self.attentions = nn.ModuleList([_SelfAttention(channels, groups)]) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        if self.attentions is not None:
            x = self.attentions[0](x)
        return self.resnets[1](x)


class _Down(nn.Module):
    """A stride-2 3x3 convolution after padding one row and column at the bottom and right."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class _Up(nn.Module):
    """Nearest-neighbour 2x upsampling, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    def __init__(self, resnets: list[_Resnet], sampler: nn.Module | None, kind: str):
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        setattr(self, kind, nn.ModuleList([sampler]) if sampler is not None else None)
        self._kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for r in self.resnets:
            x = r(x)
        samplers = getattr(self, self._kind)
        return samplers[0](x) if samplers is not None else x


class _Encoder(nn.Module):
    def __init__(self, cfg: SimpleNamespace):
        super().__init__()
        ch, g, n = cfg.block_out_channels, cfg.norm_num_groups, cfg.layers_per_block
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        cin = ch[0]
        for i, cout in enumerate(ch):
            resnets = [_Resnet(cin if j == 0 else cout, cout, g) for j in range(n)]
            self.down_blocks.append(_Level(resnets, _Down(cout) if i < len(ch) - 1 else None, "downsamplers"))
            cin = cout
        self.mid_block = _Mid(ch[-1], g, cfg.mid_block_add_attention)
        self.conv_norm_out = nn.GroupNorm(g, ch[-1], eps=_EPS)
        self.conv_out = nn.Conv2d(ch[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(x))))


class _Decoder(nn.Module):
    def __init__(self, cfg: SimpleNamespace):
        super().__init__()
        ch, g, n = list(reversed(cfg.block_out_channels)), cfg.norm_num_groups, cfg.layers_per_block
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)
        self.mid_block = _Mid(ch[0], g, cfg.mid_block_add_attention)
        self.up_blocks = nn.ModuleList()
        cin = ch[0]
        for i, cout in enumerate(ch):
            resnets = [_Resnet(cin if j == 0 else cout, cout, g) for j in range(n + 1)]
            self.up_blocks.append(_Level(resnets, _Up(cout) if i < len(ch) - 1 else None, "upsamplers"))
            cin = cout
        self.conv_norm_out = nn.GroupNorm(g, ch[-1], eps=_EPS)
        self.conv_out = nn.Conv2d(ch[-1], cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class _Posterior:
    """The diagonal Gaussian over latents that the encoder's moments describe."""

    def __init__(self, moments: torch.Tensor):
        self.mean, logvar = moments.chunk(2, dim=1)
        self.std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        device = generator.device if generator is not None else self.mean.device
        noise = torch.randn(self.mean.shape, generator=generator, device=device, dtype=self.mean.dtype)
        return self.mean + self.std * noise.to(self.mean.device)

    def mode(self) -> torch.Tensor:
        return self.mean


DEFAULTS = {"in_channels": 3, "out_channels": 3, "block_out_channels": [64], "layers_per_block": 1,
            "latent_channels": 4, "norm_num_groups": 32, "scaling_factor": 0.18215, "shift_factor": None,
            "use_quant_conv": True, "use_post_quant_conv": True, "mid_block_add_attention": True}


class KLAutoencoder(nn.Module):
    """Encoder, decoder and the 1x1 convolutions on the latent moments, named as in diffusers' checkpoints.

    `encode(x).latent_dist` has `.mean` and `.sample(generator)`; `decode(z).sample` is the image: the
    interface `FrameAutoencoder` uses.
    """

    def __init__(self, **config):
        super().__init__()
        cfg = {**DEFAULTS, **{k: v for k, v in config.items() if k in DEFAULTS}}
        cfg["block_out_channels"] = list(cfg["block_out_channels"])
        self.config = SimpleNamespace(**cfg)
        self.encoder = _Encoder(self.config)
        self.decoder = _Decoder(self.config)
        c = self.config.latent_channels
        self.quant_conv = nn.Conv2d(2 * c, 2 * c, 1) if self.config.use_quant_conv else None
        self.post_quant_conv = nn.Conv2d(c, c, 1) if self.config.use_post_quant_conv else None

    @classmethod
    def from_folder(cls, folder: str | Path) -> KLAutoencoder:
        """The autoencoder of a diffusers folder (config.json + diffusion_pytorch_model.safetensors), float32
        on the CPU. Raises KeyError/RuntimeError when the weights do not fit this network."""
        from safetensors.torch import load_file

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        model = cls(**config)
        model.load_state_dict(load_file(str(folder / "diffusion_pytorch_model.safetensors")), strict=True)
        return model.eval().requires_grad_(False)

    def encode(self, x: torch.Tensor) -> SimpleNamespace:
        moments = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        return SimpleNamespace(latent_dist=_Posterior(moments))

    def decode(self, z: torch.Tensor) -> SimpleNamespace:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return SimpleNamespace(sample=self.decoder(z))
