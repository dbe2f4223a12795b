"""A new model folder with LoRA adapters merged into its weights (`emu-video merge-lora`): it loads like any
other folder, with no adapters left to apply."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open

from emu_video.errors import UserError
from emu_video.models.lora import Adapter
from emu_video.models.serialization import (
    read_safetensors,
    with_identity_clause_weights,
)
from emu_video.models.unet import VideoUNet
from emu_video.pipelines.adapters import load_adapters, merge_by_layout
from emu_video.pipelines.model_index import ModelIndex
from emu_video.training.export import link_or_copy, staged_folder

_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def _stored_dtype(path: Path) -> torch.dtype:
    """The dtype a weights file stores its floating-point tensors in (that of its first one)."""
    with safe_open(str(path), "pt") as f:
        for key in f.keys():
            dtype = _DTYPES.get(f.get_slice(key).get_dtype())
            if dtype is not None:
                return dtype
    return torch.float32


def merge_lora_folder(model_dir: str | Path, adapters: Sequence[tuple[str | Path | Adapter, float]],
                      out_dir: str | Path) -> Path:
    """Write `out_dir`: `model_dir` with each (adapter, scale) merged into the weights of its layout. Weight
    files keep their dtype; unchanged parts are hard-linked where the file system allows, else copied."""
    src, out = Path(model_dir), Path(out_dir)
    if not adapters:
        raise UserError("give at least one LoRA adapter to merge")
    if out.resolve() == src.resolve():
        raise UserError("--out must be a new folder, not the model folder itself")
    index = ModelIndex.load(src)
    loaded = load_adapters(adapters)
    unet_file = src / index.unet / "diffusion_pytorch_model.safetensors"
    unet = VideoUNet.from_pretrained(src / index.unet)
    files = index.weight_files()
    temporal = {name: with_identity_clause_weights(unet, read_safetensors(src / rel)) for name, rel in files.items()}
    merged = merge_by_layout(unet, temporal, loaded)
    with staged_folder(out) as dst:
        skip = {Path(index.unet).parts[0], *(Path(rel).parts[0] for rel in files.values()), "model_index.json"}
        for child in src.iterdir():
            if child.name not in skip:
                link_or_copy(child, dst / child.name)
        for rel in files.values():  # the layouts' folders, without their weight files
            for sibling in (src / rel).parent.iterdir():
                if sibling.name != Path(rel).name:
                    link_or_copy(sibling, dst / Path(rel).parent / sibling.name)
        unet.save_pretrained(dst / index.unet, _stored_dtype(unet_file))
        for name, rel in files.items():
            own = unet.state_dict()
            with torch.no_grad():
                for k, v in merged[name].items():
                    own[k].copy_(v)
            unet.save_video_weights(dst / rel, _stored_dtype(src / rel))
        names = ", ".join(f"{a.path.name if a.path else 'adapter'} x {s:g}" for a, s in loaded)
        index.description = (index.description + "; " if index.description else "") + f"LoRA merged: {names}"
        index.save(dst)
    return out
