"""Folders of generated or real videos: listing, clip sampling and batched decoding for feature extractors.

Clip sampling is deterministic: the first `num_frames` frames taken every `stride` frames, as StyleGAN-V does
for generated videos (`load_n_consecutive` without random offset) and as cd-fvd does for video arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from emu_video.errors import UserError
from emu_video.io.video import VIDEO_SUFFIXES, read_video


def list_videos(folder, limit: int | None = None) -> list[Path]:
    """Video files inside `folder` and its sub-folders (UCF-101's `Class/v_Class_g01_c01.avi`), sorted by their
    path inside it (the first `limit` of them); hidden files and folders (a writer's temporary files) are left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"video folder not found: {folder}")
    paths = sorted((p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
                    and not any(part.startswith(".") for part in p.relative_to(folder).parts)),
                   key=lambda p: p.relative_to(folder).parts)
    if not paths:
        raise UserError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    return paths[:limit] if limit else paths


def sample_clip(path, num_frames: int | None, stride: int = 1) -> np.ndarray:
    """(T, H, W, 3) uint8: frames 0, stride, 2*stride, ... of the video; all of them when num_frames is None."""
    video = read_video(path, max_frames=None if num_frames is None else num_frames * stride)
    frames = video.frames[::stride]
    if num_frames is not None:
        if frames.shape[0] < num_frames:
            raise UserError(f"{path} has {frames.shape[0]} frames at stride {stride}; this metric needs "
                            f"{num_frames}: pass --frames {frames.shape[0]} or longer videos")
        frames = frames[:num_frames]
    return frames


def iter_clip_batches(paths: list[Path], num_frames: int | None, batch_size: int,
                      prepare: Callable[[np.ndarray], torch.Tensor], stride: int = 1,
                      workers: int = 4) -> Iterator[tuple[list[Path], torch.Tensor]]:
    """Decode clips on a few threads (PyAV releases the GIL) and yield (paths, stacked prepared clips)."""

    def load(p):
        return prepare(sample_clip(p, num_frames, stride))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i in range(0, len(paths), batch_size):
            chunk = paths[i : i + batch_size]
            yield chunk, torch.stack(list(pool.map(load, chunk)))
