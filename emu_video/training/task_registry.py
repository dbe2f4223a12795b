"""Which task trains a stage: the autoencoder, the text-to-image model, or a conditioning layout's weights."""

from __future__ import annotations

import torch

from emu_video.training.config import TrainingConfig
from emu_video.training.task_autoencoder import AutoencoderTask
from emu_video.training.task_diffusion import LayoutTask, TextToImageTask
from emu_video.training.tasks import Task


def build_task(cfg: TrainingConfig, device: torch.device, autocast_dtype: torch.dtype | None,
               src=None, inputs=None) -> Task:
    """The stage's task; diffusion stages take their model source and input encoders (live or cached)."""
    if cfg.stage.kind == "autoencoder":
        return AutoencoderTask(cfg, device, autocast_dtype)
    if cfg.stage.kind == "text_to_image":
        return TextToImageTask(cfg, device, autocast_dtype, src, inputs)
    return LayoutTask(cfg, device, autocast_dtype, src, inputs)
