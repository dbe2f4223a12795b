"""Small real videos for the curation tests: textured content (so an H.264 encoder finds motion vectors),
still or moving by a known number of pixels per frame, with or without a hard cut, in several codecs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def texture(size: int, seed: int) -> np.ndarray:
    """A smooth random texture (random values every 8 px, bicubic in between) around a colour of its own,
    (size, size, 3) uint8: like natural footage, neighbouring frames of a pan differ little, scenes a lot."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 120, size=(size // 8, size // 8, 3)) + rng.integers(0, 136, size=3)
    image = Image.fromarray(coarse.astype(np.uint8)).resize((size, size), Image.BICUBIC)
    return np.asarray(image)


def panning(num_frames: int, size: int = 64, step: int = 0, seed: int = 0) -> np.ndarray:
    """A texture translated right by `step` pixels per frame (wrapping round), (T, size, size, 3)."""
    base = texture(size, seed)
    return np.stack([np.roll(base, t * step, axis=1) for t in range(num_frames)])


def with_cut(num_frames: int, cut: int, size: int = 64, step: int = 2) -> np.ndarray:
    """Frames [0, cut) pan one texture, frames [cut, T) another: a hard cut at `cut`."""
    a, b = panning(num_frames, size, step, seed=1), panning(num_frames, size, step, seed=2)
    return np.concatenate([a[:cut], b[cut:]])


def write(path: Path, frames: np.ndarray, fps: float = 16, codec: str = "libx264", options: dict | None = None,
          pix_fmt: str = "yuv420p") -> Path:
    """Encode frames with PyAV (H.264 by default; `options` are the encoder's, e.g. {"g": "1"} for intra-only)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.options = dict(options or {})
        stream.codec_context.time_base = 1 / rate
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
