"""Video and image files: H.264 yuv420p mp4 written with PyAV, GIF with Pillow, any container PyAV reads.

Frames are uint8 numpy arrays shaped (T, H, W, 3), RGB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from emu_video.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass
class Video:
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError(f"frames must be shaped (T, H, W, 3), got {tuple(frames.shape)}")
    if frames.shape[0] < 1:
        raise UserError("a video needs at least one frame")
    if frames.dtype != np.uint8:
        raise UserError(f"frames must be uint8, got {frames.dtype}")
    return frames


def _fps_fraction(fps: float) -> Fraction:
    if not fps or fps <= 0:
        raise UserError(f"fps must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


def write_video(path: str | os.PathLike, frames, fps: float, crf: int = 18) -> Path:
    """Write frames to `path`: .mp4/.mkv/.mov as H.264 yuv420p (even sizes are padded), .gif with Pillow.

    The file is written to a temporary name and renamed, so a crash never leaves a half-written video.
    """
    path = Path(path)
    frames = _check_frames(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    if path.suffix.lower() == ".gif":
        _write_gif(tmp, frames, fps)
    else:
        _write_h264(tmp, frames, fps, crf)
    os.replace(tmp, path)
    return path


def _write_h264(path: Path, frames: np.ndarray, fps: float, crf: int) -> None:
    import av

    t, h, w, _ = frames.shape
    # yuv420p needs even width and height: pad by edge replication if needed.
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    rate = _fps_fraction(fps)
    with av.open(str(path), mode="w", format="mp4" if path.suffix.lower() == ".mp4" else None) as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        stream.codec_context.time_base = Fraction(1, 1) / rate
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = i
            vf.time_base = stream.codec_context.time_base
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_gif(path: Path, frames: np.ndarray, fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    duration_ms = int(round(1000.0 / fps))
    images[0].save(
        path, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0, optimize=False
    )


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> Video:
    """Decode every frame (or the first `max_frames`) of a video file as RGB uint8, with its frame rate."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"video file not found: {path}")
    if path.is_dir():
        raise UserError(f"expected a video file, got a folder: {path}")
    if path.suffix.lower() == ".gif":
        return _read_gif(path, max_frames)
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UserError(f"{path} holds no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except UserError:
        raise
    except Exception as exc:  # av.error.* and friends: unreadable or corrupt container
        raise UserError(f"cannot read video {path}: {exc}") from exc
    if not frames:
        raise UserError(f"cannot read video {path}: it has no decodable frames")
    fps = float(rate) if rate else 0.0
    if fps <= 0:
        raise UserError(f"cannot read video {path}: its frame rate is unknown")
    return Video(np.stack(frames), fps)


def _read_gif(path: Path, max_frames: int | None) -> Video:
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:
            frames, durations = [], []
            for frame in ImageSequence.Iterator(im):
                frames.append(np.asarray(frame.convert("RGB")))
                durations.append(frame.info.get("duration", 100) or 100)
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except Exception as exc:
        raise UserError(f"cannot read GIF {path}: {exc}") from exc
    if not frames:
        raise UserError(f"cannot read GIF {path}: no frames")
    fps = 1000.0 / float(np.mean(durations))
    return Video(np.stack(frames), fps)


def probe_video(path: str | os.PathLike) -> dict:
    """Frame count, fps, size and codec as stored in the file's container (decodes to count frames exactly)."""
    import av

    path = Path(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        n = sum(1 for _ in container.decode(stream))
        return {
            "frames": n,
            "fps": float(rate) if rate else None,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
        }


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise UserError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"cannot read image {path}: {exc}") from exc


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path)
    return path
