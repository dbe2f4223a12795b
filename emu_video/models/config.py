"""Configuration of the video U-Net, and the named presets (`paper`, `sd15`, `tiny`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emu_video.errors import UserError
from emu_video.io.jsonfile import read_json


@dataclass
class VideoUNetConfig:
    """Shape of a factorized spatio-temporal U-Net.

    The spatial part mirrors diffusers' `UNet2DConditionModel` (cross-attention down blocks on the levels
    where `attention_levels` is true, a cross-attention mid block, mirrored up blocks with one extra
    ResNet each). Temporal layers follow every ResNet conv (a 1D conv over time) and every spatial
    transformer (a temporal transformer with one layer per spatial layer: self-attention over frames,
    cross-attention to that layer's text context, MLP); `image_conditioning` adds the C+1 input channels for the
    zero-padded conditioning latent and its mask.
    """

    latent_channels: int = 4
    out_channels: int | None = None
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: tuple[int, ...] = (2, 2, 2, 2)
    attention_levels: tuple[bool, ...] = (True, True, True, False)
    # Heads per level (diffusers' SD1.5 convention: 8 heads everywhere) or, if None, channels // attention_head_dim.
    num_attention_heads: tuple[int, ...] | None = (8, 8, 8, 8)
    attention_head_dim: int | None = None
    transformer_layers_per_block: int = 1
    # One text context per transformer layer (layer k cross-attends to context k), or a single shared context.
    context_dims: tuple[int, ...] = (768,)
    use_linear_projection: bool = False
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    # Video parts.
    image_conditioning: bool = True
    temporal_layers: bool = True
    temporal_kernel_size: int = 3
    temporal_attention_heads_dim: int = 64
    temporal_ff_mult: int = 4
    # Clause tokens: each text context ends with this many extra rows (the text encoders' `clause_tokens`,
    # pooled embeddings of the prompt's clauses). Spatial layers never see them; every temporal transformer
    # layer gains a cross-attention to them, zero-initialised (identity) like all temporal layers.
    clause_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.block_out_channels)
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        if isinstance(self.layers_per_block, int):
            self.layers_per_block = (self.layers_per_block,) * n
        self.layers_per_block = tuple(int(v) for v in self.layers_per_block)
        self.attention_levels = tuple(bool(v) for v in self.attention_levels)
        if isinstance(self.num_attention_heads, int):
            self.num_attention_heads = (self.num_attention_heads,) * n
        if self.num_attention_heads is not None:
            self.num_attention_heads = tuple(int(v) for v in self.num_attention_heads)
        self.context_dims = tuple(int(v) for v in self.context_dims)
        self.clause_tokens = int(self.clause_tokens)
        if self.clause_tokens < 0:
            raise UserError(f"clause_tokens must be >= 0, got {self.clause_tokens}")
        if self.out_channels is None:
            self.out_channels = self.latent_channels
        for name, value in (("layers_per_block", self.layers_per_block), ("attention_levels", self.attention_levels)):
            if len(value) != n:
                raise UserError(f"{name} has {len(value)} entries but there are {n} levels")
        if self.num_attention_heads is None and not self.attention_head_dim:
            raise UserError("set num_attention_heads or attention_head_dim")
        if len(self.context_dims) not in (1, self.transformer_layers_per_block):
            raise UserError(
                f"{len(self.context_dims)} text contexts for {self.transformer_layers_per_block} transformer layers: "
                "give one context, or one per layer"
            )

    # Derived shapes -------------------------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        """Channels of conv_in's input: noisy latent, plus conditioning latent and mask when conditioned."""
        return 2 * self.latent_channels + 1 if self.image_conditioning else self.latent_channels

    def heads(self, level: int) -> int:
        if self.num_attention_heads is not None:
            return self.num_attention_heads[level]
        return self.block_out_channels[level] // self.attention_head_dim

    def context_dim_of_layer(self, layer: int) -> int:
        return self.context_dims[layer if len(self.context_dims) > 1 else 0]

    # Serialisation --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        d["_class_name"] = "VideoUNet"
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoUNetConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in d if k not in names and not k.startswith("_"))
        if unknown:
            raise UserError(f"unknown VideoUNet config keys: {', '.join(unknown)}")
        return cls(**{k: v for k, v in d.items() if k in names})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> VideoUNetConfig:
        path = Path(path)
        if not path.exists():
            raise UserError(f"missing U-Net config: {path}")
        return cls.from_dict(read_json(path, "U-Net config"))

    @classmethod
    def from_diffusers(cls, d: dict[str, Any], **overrides) -> VideoUNetConfig:
        """The spatial shape of a diffusers `UNet2DConditionModel` config (SD 1.x / 2.x style)."""
        down = d.get("down_block_types", ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"])
        unsupported = [b for b in down if b not in ("CrossAttnDownBlock2D", "DownBlock2D")]
        if unsupported or d.get("mid_block_type", "UNetMidBlock2DCrossAttn") != "UNetMidBlock2DCrossAttn":
            raise UserError(f"unsupported diffusers U-Net blocks: {unsupported or d.get('mid_block_type')}")
        if d.get("addition_embed_type") or d.get("class_embed_type") or d.get("time_cond_proj_dim"):
            raise UserError("diffusers U-Nets with extra class/addition embeddings (e.g. SDXL) are not supported")
        n = len(d["block_out_channels"])
        heads = d.get("num_attention_heads") or d.get("attention_head_dim", 8)
        cross = d.get("cross_attention_dim", 768)
        if isinstance(cross, (list, tuple)):
            if len(set(cross)) != 1:
                raise UserError("per-block cross_attention_dim is not supported")
            cross = cross[0]
        tlayers = d.get("transformer_layers_per_block", 1)
        if isinstance(tlayers, (list, tuple)):
            if len(set(tlayers)) != 1:
                raise UserError("per-block transformer_layers_per_block is not supported")
            tlayers = tlayers[0]
        lpb = d.get("layers_per_block", 2)
        kwargs = {
            "latent_channels": d.get("in_channels", 4),
            "out_channels": d.get("out_channels", 4),
            "block_out_channels": tuple(d["block_out_channels"]),
            "layers_per_block": tuple(lpb) if isinstance(lpb, (list, tuple)) else (lpb,) * n,
            "attention_levels": tuple(b == "CrossAttnDownBlock2D" for b in down),
            "num_attention_heads": tuple(heads) if isinstance(heads, (list, tuple)) else (heads,) * n,
            "transformer_layers_per_block": int(tlayers),
            "context_dims": (int(cross),),
            "use_linear_projection": bool(d.get("use_linear_projection", False)),
            "norm_num_groups": d.get("norm_num_groups", 32),
            "norm_eps": d.get("norm_eps", 1e-5),
            "flip_sin_to_cos": d.get("flip_sin_to_cos", True),
            "freq_shift": d.get("freq_shift", 0),
        }
        kwargs.update(overrides)
        return cls(**kwargs)


def paper_config() -> VideoUNetConfig:
    """The paper's U-Net (App. Table 1): 8-channel latent, 17 input channels, two text contexts."""
    return VideoUNetConfig(
        latent_channels=8,
        block_out_channels=(384, 768, 1536, 1536),
        layers_per_block=(3, 4, 4, 4),
        attention_levels=(True, True, True, False),
        num_attention_heads=None,
        attention_head_dim=64,
        transformer_layers_per_block=2,
        context_dims=(768, 2048),
        use_linear_projection=True,
    )


def sd15_config() -> VideoUNetConfig:
    """Stable Diffusion 1.5's spatial shapes with temporal layers and image conditioning."""
    return VideoUNetConfig()


def tiny_config() -> VideoUNetConfig:
    """A few-hundred-thousand-parameter U-Net for tests."""
    return VideoUNetConfig(
        latent_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=(1, 1),
        attention_levels=(True, True),
        num_attention_heads=None,
        attention_head_dim=16,
        transformer_layers_per_block=2,
        context_dims=(24, 40),
        norm_num_groups=8,
        temporal_attention_heads_dim=16,
    )


PRESETS = {"paper": paper_config, "sd15": sd15_config, "tiny": tiny_config}


def preset(name: str) -> VideoUNetConfig:
    if name not in PRESETS:
        raise UserError(f"unknown configuration {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]()
