"""Encode a stage's data once (latents + text embeddings) into a cache folder that training reads instead."""

from __future__ import annotations

from pathlib import Path

import torch

from emu_video.data.cache import write_cache
from emu_video.errors import UserError
from emu_video.training.config import TrainingConfig
from emu_video.training.data_setup import pixel_dataset
from emu_video.training.inputs import DiffusionInputs
from emu_video.training.model_setup import model_source
from emu_video.training.parallel import pick_device


def precompute_cache(cfg: TrainingConfig, out_dir: str | Path, batch_size: int = 8, num_workers: int = 0,
                     dtype: torch.dtype = torch.float32, device: str = "auto", overwrite: bool = False,
                     per_shard: int = 1024, progress: bool = True) -> dict:
    """Encode every usable item of cfg's data with cfg's model (the VAE and text encoders of model.init, or
    model.vae / model.text_encoders) at cfg's resolution and clip spec."""
    if not cfg.is_diffusion:
        raise UserError("only diffusion stages (text_to_image, video, interpolation) can train from a latent cache")
    if not (cfg.data.manifest or cfg.data.shards):
        raise UserError("a cache is made from data.manifest or data.shards")
    src = model_source(cfg)
    dev = pick_device(device, 0)
    inputs = DiffusionInputs.live(src, dev, torch.float32, cfg.data.resolution)
    d = cfg.data
    if d.resolution % inputs.vae.downscale:
        raise UserError(f"resolution {d.resolution} is not a multiple of the autoencoder's downscale "
                        f"{inputs.vae.downscale}")
    info = {
        "kind": cfg.media_kind, "resolution": d.resolution, "num_frames": d.num_frames, "fps": float(d.fps),
        "clip_start": d.clip_start, "seed": cfg.train.seed, "vae": str(src.vae_dir),
        "text_encoders": src.text_specs, "sources": list(d.manifest) or list(d.shards),
    }
    if cfg.media_kind == "image":
        info["num_frames"], info["fps"] = None, None
    return write_cache(pixel_dataset(cfg), out_dir, inputs.encode_pixels, inputs.encode_text, info,
                       batch_size=batch_size, num_workers=num_workers, per_shard=per_shard, dtype=dtype,
                       overwrite=overwrite, progress=progress)
