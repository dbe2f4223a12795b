"""Uploaded files, checked before any model runs: type by name, size in bytes, pixels and frames, and that
they decode. Every refusal is a `UserError` that names the upload by the name the user gave it (never the
server's temporary path)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emu_video.errors import UserError
from emu_video.io.video import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    Video,
    read_image,
    read_video,
)


@dataclass(frozen=True)
class UploadLimits:
    """The largest uploads the demo takes."""

    max_bytes: int = 20 * 2**20
    max_pixels: int = 4096 * 4096  # per image or video frame
    max_frames: int = 256  # a longer video is refused (the models take 8 to 64 frames)

    @property
    def max_megabytes(self) -> float:
        return self.max_bytes / 2**20


def file_size(num_bytes: int) -> str:
    """A size in bytes as people read it: 12 KB, 3.4 MB."""
    if num_bytes >= 2**20:
        return f"{num_bytes / 2**20:.1f} MB"
    return f"{max(1, round(num_bytes / 1024))} KB"


def _checked_file(path, suffixes: tuple[str, ...], kind: str, limits: UploadLimits, name: str | None) -> tuple[Path, str]:
    """The upload's path and the name to call it by, after its type (by suffix) and size are checked."""
    if path is None:
        raise UserError(f"no {kind} uploaded: drop a file on the {kind} box first")
    path = Path(path)
    name = name or path.name
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{name} is not {'an' if kind[0] in 'aeiou' else 'a'} {kind} file: upload one of "
                        f"{', '.join(s.lstrip('.').upper() for s in suffixes)}")
    try:
        size = os.path.getsize(path)
    except OSError:
        raise UserError(f"{name}: the upload is gone; upload it again") from None
    if size > limits.max_bytes:
        raise UserError(f"{name} is too large ({file_size(size)}; at most {file_size(limits.max_bytes)})")
    if size == 0:
        raise UserError(f"{name} is empty (0 bytes)")
    return path, name


def _check_pixels(width: int, height: int, name: str, limits: UploadLimits) -> None:
    if width * height > limits.max_pixels:
        raise UserError(f"{name} is too large ({width}x{height} px; at most {limits.max_pixels:,} pixels)")


def load_image(path, limits: UploadLimits, name: str | None = None) -> np.ndarray:
    """An uploaded image as (H, W, 3) uint8 RGB, or a `UserError` saying what is wrong with it."""
    from PIL import Image

    path, name = _checked_file(path, IMAGE_SUFFIXES, "image", limits, name)
    try:
        with Image.open(path) as im:  # reads the header only: the size is checked before any pixels decode
            width, height = im.size
    except Exception:  # PIL's UnidentifiedImageError, OSError, DecompressionBombError...
        raise UserError(f"{name} is not a readable image (corrupt, or not really "
                        f"{path.suffix.lstrip('.').upper()})") from None
    _check_pixels(width, height, name, limits)
    try:
        return read_image(path)
    except UserError:
        raise UserError(f"{name} is not a readable image (corrupt or truncated)") from None


def load_video(path, limits: UploadLimits, name: str | None = None) -> Video:
    """An uploaded video's frames (T, H, W, 3) uint8 and frame rate, or a `UserError` saying what is wrong."""
    path, name = _checked_file(path, VIDEO_SUFFIXES, "video", limits, name)

    def decoded(max_frames: int) -> Video:
        try:
            return read_video(path, max_frames=max_frames)
        except UserError:
            raise UserError(f"{name} is not a readable video (corrupt, or not really "
                            f"{path.suffix.lstrip('.').upper()})") from None

    first = decoded(1).frames  # the frame size is checked before the rest decodes
    _check_pixels(first.shape[2], first.shape[1], name, limits)
    video = decoded(limits.max_frames + 1)
    if video.num_frames > limits.max_frames:
        raise UserError(f"{name} is too long (over {limits.max_frames} frames)")
    return video
