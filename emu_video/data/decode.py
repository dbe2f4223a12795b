"""Decoding clips and images with PyAV / Pillow, from a file path or from bytes (a tar shard member).

Only the frames a clip needs are decoded: decoding stops after its last frame, and a clip that starts
late in a long video seeks to the nearest keyframe first. Any failure becomes SampleSkipped with a
reason (missing, unreadable, too_short), which the loader counts instead of crashing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import numpy as np

from emu_video.data.frames import ClipSpec, SampleSkipped, clip_indices
from emu_video.io.video import IMAGE_SUFFIXES

Source = Union[str, os.PathLike, bytes]
SEEK_AFTER_SECONDS = 2.0


def _name(source: Source, name: str | None) -> str:
    return name or (str(source) if not isinstance(source, bytes) else "<bytes>")


def _check_exists(source: Source, name: str) -> None:
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise SampleSkipped("missing", f"{name}: file not found")


def _open_av(source: Source):
    import av

    return av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))


def _gif_frames(source: Source) -> tuple[np.ndarray, float]:
    from PIL import Image, ImageSequence

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            frames.append(np.asarray(frame.convert("RGB")))
            durations.append(frame.info.get("duration", 100) or 100)
    if not frames:
        raise ValueError("no frames")
    return np.stack(frames), 1000.0 / float(np.mean(durations))


def _is_gif(source: Source, suffix: str | None) -> bool:
    if suffix:
        return suffix.lower() == ".gif"
    if isinstance(source, bytes):
        return source[:6] in (b"GIF87a", b"GIF89a")
    return Path(source).suffix.lower() == ".gif"


def _decode_av(source: Source, spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    with _open_av(source) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        count = int(stream.frames or 0)
        if count <= 0 and fps > 0 and stream.duration and stream.time_base:
            count = int(round(float(stream.duration * stream.time_base) * fps))
        if fps <= 0 or count <= 0:  # no usable metadata: decode everything
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            if not frames:
                raise ValueError("no decodable frames")
            fps = fps or 1.0
            return np.stack(frames)[clip_indices(len(frames), fps, spec, rng)]
        indices = clip_indices(count, fps, spec, rng)
        pending = sorted(set(indices))
        start_pts = stream.start_time or 0
        tb = float(stream.time_base) if stream.time_base else 0.0
        seeked = False
        if tb and indices[0] / fps > SEEK_AFTER_SECONDS:
            container.seek(int(start_pts + indices[0] / fps / tb), stream=stream, backward=True, any_frame=False)
            seeked = True
        got: dict[int, np.ndarray] = {}
        k, running = 0, 0
        for frame in container.decode(stream):
            if frame.pts is not None and tb:
                i = int(round((frame.pts - start_pts) * tb * fps))
            elif seeked:
                raise ValueError("frames without timestamps after a seek")
            else:
                i = running
            running += 1
            image = None
            while k < len(pending) and pending[k] <= i:  # a wanted index in a timestamp gap takes the next frame
                image = frame.to_ndarray(format="rgb24") if image is None else image
                got[pending[k]] = image
                k += 1
            if k == len(pending):
                break
    missing = [i for i in indices if i not in got]
    if missing:
        raise ValueError(f"stream ended early: frames {missing[:3]} of {count} not decoded (truncated file?)")
    return np.stack([got[i] for i in indices])


def decode_clip(
    source: Source, spec: ClipSpec, rng: np.random.Generator, name: str | None = None, suffix: str | None = None
) -> np.ndarray:
    """A (T, H, W, 3) uint8 clip, or SampleSkipped."""
    name = _name(source, name)
    _check_exists(source, name)
    try:
        if _is_gif(source, suffix):
            frames, fps = _gif_frames(source)
            return frames[clip_indices(len(frames), fps, spec, rng)]
        return _decode_av(source, spec, rng)
    except SampleSkipped as exc:
        raise SampleSkipped(exc.reason, f"{name}: {exc}") from None
    except Exception as exc:  # av.error.*, PIL errors, broken streams: the file is unusable
        raise SampleSkipped("unreadable", f"{name}: {type(exc).__name__}: {exc}") from None


def decode_image(
    source: Source, rng: np.random.Generator, name: str | None = None, suffix: str | None = None
) -> np.ndarray:
    """An (H, W, 3) uint8 image; a video source gives one frame drawn uniformly at random."""
    name = _name(source, name)
    _check_exists(source, name)
    suffix = (suffix or ("" if isinstance(source, bytes) else Path(source).suffix)).lower()
    if suffix in IMAGE_SUFFIXES:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                return np.asarray(im.convert("RGB"))
        except Exception as exc:
            raise SampleSkipped("unreadable", f"{name}: {type(exc).__name__}: {exc}") from None
    return decode_clip(source, ClipSpec(1, 1.0, "random"), rng, name, suffix or None)[0]
