"""Weight files: whole-model folders (`config.json` + safetensors), video-only weights, and diffusers U-Nets.

Folders follow diffusers' `save_pretrained` layout. Only safetensors are read or written (never pickle).

`PretrainedMixin` gives the U-Net class its file methods (`from_pretrained`, `save_pretrained`,
`from_diffusers`, `save_video_weights`, `load_video_weights`); `VideoUNet` inherits it, so this module never
needs the network's module (unet.py imports this one, not the reverse).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from emu_video.errors import UserError
from emu_video.io.jsonfile import read_json
from emu_video.models.config import VideoUNetConfig
from emu_video.models.naming import is_clause_param, is_video_param

if TYPE_CHECKING:  # annotations only (typing.Self needs Python 3.11)
    from typing_extensions import Self

__all__ = [
    "CONFIG_NAME",
    "VIDEO_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "PretrainedMixin",
    "is_clause_param",
    "load_weights",
    "read_safetensors",
    "with_identity_clause_weights",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
VIDEO_WEIGHTS_NAME = "temporal.safetensors"


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"missing weights file: {path}")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupt files
        raise UserError(f"cannot read weights {path}: {exc}") from exc


def _cast(sd: dict[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    if dtype is None:
        return sd
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in sd.items()}


def load_weights(model: nn.Module, sd: dict[str, torch.Tensor], source: str, spatial_only: bool = False) -> None:
    """Copy `sd` into `model`, checking every name and shape; `spatial_only` expects exactly the spatial set."""
    own = model.state_dict()
    expected = {k for k in own if not (spatial_only and is_video_param(k))}
    missing = sorted(expected - sd.keys())
    unexpected = sorted(sd.keys() - own.keys())
    mismatched = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}" for k in sd.keys() & own.keys()
                  if sd[k].shape != own[k].shape]

    def _few(items):
        return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")

    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_few(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} with the wrong shape ({_few(mismatched)})")
    if problems:
        raise UserError(f"weights in {source} do not fit this U-Net config: " + "; ".join(problems))
    model.load_state_dict(sd, strict=False)


def with_identity_clause_weights(model: nn.Module, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Temporal weights saved before the U-Net had clause attention (VideoUNetConfig.clause_tokens): the
    missing clause layers are taken from `model` with a zero output projection, so they add nothing and the
    weights compute what they did. Other weight sets are returned as they are."""
    own = model.state_dict()
    clause = {k for k in own if is_clause_param(k)}
    if not clause or clause & sd.keys():
        return sd
    out = dict(sd)
    for k in clause:
        zero = ".attn_clause.to_out.0." in k
        out[k] = torch.zeros_like(own[k]) if zero else own[k].detach().clone()
    return out


def _diffusers_weights(folder: Path) -> Path:
    for name in (WEIGHTS_NAME, "diffusion_pytorch_model.fp16.safetensors"):
        if (folder / name).exists():
            return folder / name
    if (folder / "diffusion_pytorch_model.bin").exists():
        raise UserError(
            f"{folder} has only pickle weights (diffusion_pytorch_model.bin); emu-video reads safetensors only. "
            "Convert it once with diffusers: UNet2DConditionModel.from_pretrained(...).save_pretrained(..., "
            "safe_serialization=True)"
        )
    raise UserError(f"no U-Net weights ({WEIGHTS_NAME}) in {folder}")


class PretrainedMixin:
    """Weight-file methods of a U-Net class: an `nn.Module` built as `cls(config)` from a `VideoUNetConfig`
    (kept as `self.config`), with a `reset_video_layers()` that puts its temporal layers back to identity."""

    config: VideoUNetConfig

    # Whole model -------------------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
        """`config.json` and every weight (in `dtype`, else as they are) into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_save(_cast(self.state_dict(), dtype), folder / WEIGHTS_NAME, {"format": "pt"})
        self.config.save(folder / CONFIG_NAME)
        return folder

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Self:
        """The model a `save_pretrained` folder holds, on `device` (default CPU) in `dtype` (default float32)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError(f"U-Net folder not found: {folder}")
        config = VideoUNetConfig.load(folder / CONFIG_NAME)
        with torch.device("meta"):
            model = cls(config)
        sd = read_safetensors(folder / WEIGHTS_NAME)
        model = model.to_empty(device="cpu")
        load_weights(model, _cast(sd, dtype or torch.float32), str(folder / WEIGHTS_NAME))
        return model.to(device or "cpu")

    @classmethod
    def from_diffusers(cls, folder: str | Path, **config_overrides) -> Self:
        """A video U-Net whose spatial weights are a diffusers `UNet2DConditionModel` folder's, temporal = identity."""
        folder = Path(folder)
        cfg_path = folder / CONFIG_NAME
        if not cfg_path.exists():
            raise UserError(f"no diffusers U-Net config at {cfg_path}")
        config = VideoUNetConfig.from_diffusers(read_json(cfg_path, "diffusers U-Net config"), **config_overrides)
        model = cls(config)
        sd = read_safetensors(_diffusers_weights(folder))
        load_weights(model, _cast(sd, torch.float32), str(folder), spatial_only=True)
        model.reset_video_layers()
        return model

    # Temporal ("video") weights alone ----------------------------------------------------------------------
    def save_video_weights(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Only the trainable video weights (temporal layers, conditioning input channels)."""
        path = Path(path)
        sd = {k: v for k, v in self.state_dict().items() if is_video_param(k)}
        _atomic_save(_cast(sd, dtype), path, {"format": "pt", "content": "emu-video temporal weights"})
        return path

    def load_video_weights(self, path: str | Path) -> None:
        """Replace the video weights with a `save_video_weights` file's (clause layers it lacks: identity)."""
        sd = with_identity_clause_weights(self, read_safetensors(path))
        own = self.state_dict()
        wanted = {k for k in own if is_video_param(k)}
        bad = sorted(k for k in sd if k not in wanted)
        if bad:
            raise UserError(f"{path} holds weights that are not temporal weights of this U-Net: {', '.join(bad[:5])}")
        full = {k: v for k, v in own.items() if k not in wanted}
        full.update({k: v.to(own[k].dtype) for k, v in sd.items()})
        load_weights(self, full, str(path))
