"""Evaluation videos as animated WebP (Pillow only): for machines without PyAV, whose clips are turned into
H.264 mp4 files elsewhere (`scripts/ablations.py package`). At quality 90 a 65-frame Shapes World clip takes
about 34 KB and its pixels stay within one level of the generated ones on average (H.264 at crf 18: 1.2)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def save_webp(path: str | os.PathLike, frames: np.ndarray, fps: float, quality: int = 90) -> Path:
    """Write uint8 frames (T, H, W, 3) as an animated WebP at `path` with the suffix .webp (quality 100 with
    lossless=True would keep them exactly, at about ten times the size)."""
    from PIL import Image

    path = Path(path).with_suffix(".webp")
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in np.asarray(frames, dtype=np.uint8)]
    tmp = path.with_name(f".{path.stem}.tmp.webp")
    images[0].save(tmp, format="WEBP", save_all=True, append_images=images[1:], quality=quality,
                   method=4, duration=round(1000.0 / fps), loop=0)
    os.replace(tmp, path)
    return path


def read_webp(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """The frames (T, H, W, 3) uint8 and frame rate of an animated WebP."""
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
        duration = im.info.get("duration") or 62.5
    return np.stack(frames), 1000.0 / float(duration)
