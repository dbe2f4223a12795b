"""LoRA adapters on a model folder's U-Net: each merged into the weights of the layout it was trained for.

A model folder's U-Net holds the spatial weights and the first_frame layout's temporal weights; other
layouts (interpolation, ...) have temporal weights of their own (`LAYOUT/temporal.safetensors`). An adapter
made by a training stage says which layout it adapts (emu_video/models/lora.py); an adapter without that
note (made elsewhere with peft) adapts the U-Net as it is loaded: the spatial and first_frame weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from emu_video.diffusion.layouts import layout_class
from emu_video.errors import UserError
from emu_video.models.lora import Adapter, merge_adapters, read_adapter
from emu_video.models.naming import is_video_param
from emu_video.pipelines.model_index import PRIMARY_LAYOUT


def load_adapters(specs: Iterable[tuple[str | Path | Adapter, float]]) -> list[tuple[Adapter, float]]:
    """(adapter or its path, scale) pairs with the adapters read and the scales checked."""
    out = []
    for item, scale in specs:
        scale = float(scale)
        if scale != scale or abs(scale) == float("inf"):
            raise UserError(f"a LoRA scale must be a finite number, got {scale}")
        out.append((item if isinstance(item, Adapter) else read_adapter(item), scale))
    return out


def adapter_layout(adapter: Adapter, available: Iterable[str]) -> str:
    """The layout whose temporal weights `adapter` changes: the primary one (the U-Net's own), or one of
    `available` (the layouts with weights of their own)."""
    if not adapter.layout:
        return PRIMARY_LAYOUT
    name = layout_class(adapter.layout).name
    if name == PRIMARY_LAYOUT:
        return name
    where = adapter.path or "a LoRA adapter"
    if name not in set(available):
        raise UserError(f"{where} adapts the {name} layout's temporal weights; this model folder has none "
                        f"(train a {name} stage first)")
    if adapter.touches_spatial:
        raise UserError(f"{where} adapts the {name} layout but also changes spatial weights, which every layout "
                        "shares; it cannot be merged")
    return name


def _video_weights(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in unet.state_dict().items() if is_video_param(k)}


@torch.no_grad()
def _load_video_weights(unet: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    own = unet.state_dict()
    for k, v in weights.items():
        own[k].copy_(v.to(own[k].dtype))


@torch.no_grad()
def merge_by_layout(unet: torch.nn.Module, temporal: dict[str, dict[str, torch.Tensor]],
                    adapters: Sequence[tuple[Adapter, float]]) -> dict[str, dict[str, torch.Tensor]]:
    """Merge each (adapter, scale): adapters of the primary layout or of none into `unet` (in place), those
    of another layout into that layout's temporal weights (`temporal`: layout -> weights, the primary's
    excluded). Returns `temporal` with the changed layouts' weights replaced; `unet` keeps its own temporal
    weights."""
    groups: dict[str, list[tuple[Adapter, float]]] = {}
    for adapter, scale in adapters:
        groups.setdefault(adapter_layout(adapter, temporal), []).append((adapter, scale))
    merge_adapters(unet, groups.pop(PRIMARY_LAYOUT, []))
    out = dict(temporal)
    if not groups:
        return out
    own = _video_weights(unet)
    for layout, group in groups.items():
        _load_video_weights(unet, temporal[layout])
        merge_adapters(unet, group)
        out[layout] = _video_weights(unet)
    _load_video_weights(unet, own)
    return out
