"""Which source frames make a clip, and how frames become model pixels.

A clip is `num_frames` frames at `fps`: frame k is taken at time start + k / fps, i.e. from source
index round(start_index + k * source_fps / fps). The start is uniform over every position that fits
("random"), the first frame ("first") or the middle ("center"). Pixels are centre-cropped to a square,
resized with an antialiased bicubic filter (a box-like prefilter when shrinking) and scaled to [-1, 1];
frames already at the model's size may instead travel as uint8 and be scaled on the device (`model_pixels`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

CLIP_STARTS = ("random", "first", "center")


class SampleSkipped(Exception):
    """A sample that cannot be used: `reason` is one of SKIP_REASONS; the message names the file."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


SKIP_REASONS = ("missing", "unreadable", "too_short")


@dataclass(frozen=True)
class ClipSpec:
    num_frames: int
    fps: float
    start: str = "random"

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.start not in CLIP_STARTS:
            raise ValueError(f"clip start must be one of {CLIP_STARTS}, got {self.start!r}")

    def span_frames(self, source_fps: float) -> float:
        """Distance in source frames between the first and the last frame of the clip."""
        return (self.num_frames - 1) * source_fps / self.fps


def clip_indices(num_source: int, source_fps: float, spec: ClipSpec, rng: np.random.Generator) -> list[int]:
    """Source frame indices of one clip; raises SampleSkipped("too_short") when the video is too short."""
    span = spec.span_frames(source_fps)
    last_start = (num_source - 1) - span
    if last_start < -1e-6:
        need = spec.num_frames / spec.fps
        raise SampleSkipped(
            "too_short",
            f"{num_source} frames at {source_fps:g} fps; a clip of {spec.num_frames} frames at {spec.fps:g} fps "
            f"needs {need:.2f} s",
        )
    top = max(0, math.floor(last_start + 1e-6))
    if spec.start == "random":
        start = int(rng.integers(0, top + 1))
    elif spec.start == "center":
        start = top // 2
    else:
        start = 0
    step = source_fps / spec.fps
    return [min(num_source - 1, int(math.floor(start + k * step + 0.5))) for k in range(spec.num_frames)]


def square_crop_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the centred square crop."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def centre_crop_box(height: int, width: int, aspect: float) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width) of the largest centred crop with width / height = `aspect`."""
    if width / height > aspect:  # too wide
        w = max(1, round(height * aspect))
        return 0, (width - w) // 2, height, w
    h = max(1, round(width / aspect))
    return (height - h) // 2, 0, h, width


def to_model_pixels(frames: np.ndarray, resolution: int, width: int | None = None) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, resolution, width) float32 in [-1, 1]; (H, W, 3) -> (3, resolution, width).

    Centre crop to the target's aspect ratio (square unless `width` is given), then an antialiased bicubic
    resize when the size differs.
    """
    height, width = int(resolution), int(width or resolution)
    single = frames.ndim == 3
    if single:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {tuple(frames.shape)}")
    top, left, h, w = centre_crop_box(frames.shape[1], frames.shape[2], width / height)
    crop = frames[:, top : top + h, left : left + w]
    if (h, w) == (height, width):  # already the right size: scale in numpy, no resampling
        x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(crop.astype(np.float32) * (1 / 127.5) - 1.0, -1, 0)))
        return x[:, 0] if single else x
    x = torch.from_numpy(np.array(crop, dtype=np.uint8, copy=True)).permute(0, 3, 1, 2).float()  # (T, 3, h, w)
    x = F.interpolate(x, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    x = (x.clamp(0, 255) / 127.5 - 1.0).transpose(0, 1).contiguous()  # (3, T, height, width)
    return x[:, 0] if single else x


def to_uint8_pixels(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, H, W) uint8, (H, W, 3) -> (3, H, W): frames that already have the model's
    size travel as bytes (a quarter of float32's memory and copies); `model_pixels` scales them later."""
    if frames.dtype != np.uint8 or frames.shape[-1] != 3 or frames.ndim not in (3, 4):
        raise ValueError(f"frames must be uint8 (T, H, W, 3) or (H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(frames, -1, 0)))


def model_pixels(x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pixels as the models take them: uint8 (0..255) is scaled to [-1, 1]; floats pass as they are."""
    if x.dtype == torch.uint8:
        return x.to(dtype) * (1 / 127.5) - 1.0
    return x.to(dtype)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one sample in one epoch: the same wherever (worker, rank, restart) it is drawn."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)]))
