"""The stage's dataset and input encoders, from files, tar shards or a latent cache."""

from __future__ import annotations

import logging

import torch

from emu_video.data.cache import CachedDataset
from emu_video.data.datasets import MediaSource, PixelDataset
from emu_video.data.frames import ClipSpec
from emu_video.errors import UserError
from emu_video.training.config import TrainingConfig
from emu_video.training.inputs import DiffusionInputs, check_cache
from emu_video.training.model_setup import ModelSource

log = logging.getLogger(__name__)


def clip_spec(cfg: TrainingConfig) -> ClipSpec | None:
    d = cfg.data
    return ClipSpec(d.num_frames, float(d.fps), d.clip_start) if cfg.media_kind == "video" else None


def pixel_dataset(cfg: TrainingConfig):
    d = cfg.data
    if d.source == "shapes":
        from emu_video.shapes.stream import ShapesWorldDataset

        sh = cfg.shapes
        two = sh.video_two_objects if cfg.media_kind == "video" else sh.image_two_objects
        layout = cfg.conditioning_layout()
        past = layout.past(d.num_frames) if sh.motion_change and layout is not None else 0
        return ShapesWorldDataset(cfg.media_kind, d.resolution, clip_spec(cfg), cfg.train.seed,
                                  two_object_fraction=two, motion_captions=sh.image_motion_captions,
                                  past_frames=past, motion_change=sh.motion_change, rename=sh.rename)
    if d.source != "files":
        raise UserError(f"data.source = {d.source!r}; choose files or shapes")
    return PixelDataset(MediaSource(d.manifest, d.shards), cfg.media_kind, d.resolution, clip_spec(cfg), cfg.train.seed)


def build_data(cfg: TrainingConfig, src: ModelSource | None, device: torch.device, frozen_dtype: torch.dtype):
    """(dataset, inputs): inputs encode batches for diffusion stages (None for the autoencoder stage)."""
    d = cfg.data
    if d.cache:
        dataset = CachedDataset(d.cache)
        check_cache(dataset.info, cfg.media_kind, d.resolution, d.num_frames, d.fps)
        if src is not None and dataset.info.get("vae") and dataset.info["vae"] != str(src.vae_dir):
            log.warning("the cache was encoded with the autoencoder %s, this model uses %s",
                        dataset.info["vae"], src.vae_dir)
        return dataset, DiffusionInputs.cached(dataset, device)
    dataset = pixel_dataset(cfg)
    inputs = DiffusionInputs.live(src, device, frozen_dtype, d.resolution) if cfg.is_diffusion else None
    if inputs is not None and d.resolution % inputs.vae.downscale:
        raise UserError(f"data.resolution={d.resolution} is not a multiple of the autoencoder's downscale "
                        f"{inputs.vae.downscale}")
    return dataset, inputs


def first_caption(dataset) -> str:
    if isinstance(dataset, CachedDataset):
        return dataset.captions[0] if dataset.captions else ""
    if hasattr(dataset, "caption"):
        return dataset.caption(0)
    return dataset.source.caption(0)
