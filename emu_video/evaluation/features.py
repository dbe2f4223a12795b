"""Batched feature extraction over a list of video files, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emu_video.errors import UserError
from emu_video.evaluation.detectors import VideoNet
from emu_video.evaluation.videos import iter_clip_batches


def extract(paths: list[Path], net: VideoNet, prepare: Callable[[np.ndarray], torch.Tensor], num_frames: int,
            batch_size: int = 16, stride: int = 1, desc: str = "features", progress: bool = True) -> np.ndarray:
    """(N, D) float32 features of the clips of `paths` (the first `num_frames` frames every `stride`)."""
    if net.exact_frames is not None and num_frames != net.exact_frames:
        raise UserError(f"{net.kind} takes clips of exactly {net.exact_frames} frames, got --frames {num_frames}")
    if num_frames < net.min_frames:
        raise UserError(f"{net.kind} needs clips of at least {net.min_frames} frames, got --frames {num_frames}")
    out = []
    with tqdm(total=len(paths), desc=desc, unit="video", disable=not progress) as bar:
        for chunk, batch in iter_clip_batches(paths, num_frames, batch_size, prepare, stride=stride):
            out.append(net.features(batch).cpu().numpy())
            bar.update(len(chunk))
    return np.concatenate(out).astype(np.float32)
