"""Bring the two videos of a pair to one specification before raters see them (Emu Video App. Tables 8-9).

Both videos are reduced to the smaller of the two specifications, so that neither system wins on
resolution, length or frame rate alone:

* aspect ratio -- centre crop to a common aspect ratio: the one of the more square video when both are
  landscape (or both portrait), 1:1 when one is landscape and the other portrait, or a ratio given by the
  caller (the paper used 1:1 for every comparison);
* spatial size -- bilinear resize (antialiased when shrinking) to the smaller of the two cropped sizes,
  rounded down to even numbers for H.264 yuv420p;
* duration -- temporal centre crop to the shorter duration;
* frame rate -- resample to the lower frame rate by picking, for each output frame, the source frame
  nearest in time.

Videos are decoded twice with PyAV: once to read the timestamps and size, once to keep only the frames the
output needs, so memory stays at the size of the output.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from emu_video.errors import UserError
from emu_video.io.video import write_video


@dataclass(frozen=True)
class SourceInfo:
    """What a video file holds: size, frame rate, frame count and each frame's time from the first one."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    times: tuple[float, ...]

    @property
    def duration(self) -> float:
        if self.num_frames >= 2:
            steps = np.diff(np.asarray(self.times))
            step = float(np.median(steps)) if steps.size and np.median(steps) > 0 else 1.0 / self.fps
            return self.times[-1] - self.times[0] + step
        return 1.0 / self.fps

    def summary(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 6),
            "frames": self.num_frames,
            "duration": round(self.duration, 6),
        }


@dataclass(frozen=True)
class Spec:
    """The common specification of a pair after processing."""

    width: int
    height: int
    fps: float
    num_frames: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def summary(self) -> dict:
        return {**asdict(self), "fps": round(self.fps, 6), "duration": round(self.duration, 6)}


@dataclass(frozen=True)
class Plan:
    """How one video becomes the common spec: a crop box (x, y, w, h) and the source frame of each output."""

    crop: tuple[int, int, int, int]
    indices: tuple[int, ...]


def _open(path: str | Path):
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # av.error.* : unreadable, not a media file
        raise UserError(f"cannot read video {path}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise UserError(f"{path} holds no video stream")
    return container


def probe(path: str | Path) -> SourceInfo:
    """Decode `path` once to learn its size, frame rate and the time of every frame."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"video file not found: {path}")
    container = _open(path)
    times: list[float | None] = []
    width = height = 0
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        for frame in container.decode(stream):
            times.append(frame.time)
            width, height = frame.width, frame.height
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot decode video {path}: {exc}") from exc
    finally:
        container.close()
    if not times:
        raise UserError(f"cannot read video {path}: it has no decodable frames")
    fps = float(rate) if rate else 0.0
    if any(t is None for t in times) or len(set(times)) != len(times):
        if fps <= 0:
            raise UserError(f"cannot read video {path}: it has neither a frame rate nor frame timestamps")
        rel = [i / fps for i in range(len(times))]
    else:
        t0 = times[0]
        rel = [float(t) - t0 for t in times]
        if any(b <= a for a, b in zip(rel, rel[1:])):  # out of order: trust the rate instead
            if fps <= 0:
                raise UserError(f"cannot read video {path}: its frame timestamps are out of order")
            rel = [i / fps for i in range(len(times))]
    if fps <= 0:
        fps = (len(rel) - 1) / rel[-1] if len(rel) > 1 and rel[-1] > 0 else 1.0
    return SourceInfo(str(path), int(width), int(height), fps, len(rel), tuple(rel))


def _parse_aspect(aspect: str | float | Fraction | None) -> float | None:
    if aspect is None:
        return None
    if isinstance(aspect, str):
        text = aspect.strip()
        try:
            if ":" in text:
                w, h = text.split(":", 1)
                value = float(w) / float(h)
            else:
                value = float(Fraction(text))
        except (ValueError, ZeroDivisionError) as exc:
            raise UserError(f"bad aspect ratio {aspect!r}: use W:H, e.g. 1:1 or 16:9") from exc
    else:
        value = float(aspect)
    if not math.isfinite(value) or value <= 0 or value > 100 or value < 0.01:
        raise UserError(f"bad aspect ratio {aspect!r}: use W:H, e.g. 1:1 or 16:9")
    return value


def common_aspect(a: SourceInfo, b: SourceInfo, aspect=None) -> float:
    forced = _parse_aspect(aspect)
    if forced is not None:
        return forced
    ra, rb = a.width / a.height, b.width / b.height
    if (ra - 1.0) * (rb - 1.0) < 0:  # one landscape, one portrait: only a square crop is fair to both
        return 1.0
    return ra if abs(math.log(ra)) <= abs(math.log(rb)) else rb


def centre_crop_box(width: int, height: int, ratio: float) -> tuple[int, int, int, int]:
    """The largest centred box of aspect `ratio` (width / height) inside a width x height frame."""
    if width / height > ratio:
        h = height
        w = max(1, min(width, round(height * ratio)))
    else:
        w = width
        h = max(1, min(height, round(width / ratio)))
    return ((width - w) // 2, (height - h) // 2, w, h)


def _nearest_indices(times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    right = np.clip(np.searchsorted(times, targets), 0, len(times) - 1)
    left = np.clip(right - 1, 0, len(times) - 1)
    pick_left = np.abs(targets - times[left]) <= np.abs(times[right] - targets) + 1e-9
    return np.where(pick_left, left, right)


def plan_pair(a: SourceInfo, b: SourceInfo, aspect=None) -> tuple[Spec, Plan, Plan]:
    """The common spec of two videos and how to get each of them there."""
    ratio = common_aspect(a, b, aspect)
    boxes = [centre_crop_box(v.width, v.height, ratio) for v in (a, b)]
    height = min(box[3] for box in boxes)
    height -= height % 2
    width = round(height * ratio)
    width -= width % 2
    if width < 2 or height < 2:
        raise UserError(f"videos too small to pair: {a.path} ({a.width}x{a.height}), {b.path} ({b.width}x{b.height})")
    exact = width / height
    boxes = [centre_crop_box(v.width, v.height, exact) for v in (a, b)]
    fps = min(a.fps, b.fps)
    duration = min(a.duration, b.duration)
    num_frames = max(1, int(math.floor(duration * fps + 1e-6)))
    spec = Spec(width, height, fps, num_frames)
    plans = []
    for video, box in zip((a, b), boxes):
        times = np.asarray(video.times, dtype=np.float64)
        start = times[0] + (video.duration - num_frames / fps) / 2.0
        targets = start + np.arange(num_frames) / fps
        plans.append(Plan(box, tuple(int(i) for i in _nearest_indices(times, targets))))
    return spec, plans[0], plans[1]


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def render(info: SourceInfo, plan: Plan, spec: Spec) -> np.ndarray:
    """Decode `info.path` again and return the planned frames, cropped and resized: (T, H, W, 3) uint8."""
    wanted = set(plan.indices)
    last = max(plan.indices)
    x, y, w, h = plan.crop
    kept: dict[int, np.ndarray] = {}
    container = _open(info.path)
    try:
        for j, frame in enumerate(container.decode(container.streams.video[0])):
            if j in wanted:
                rgb = frame.to_ndarray(format="rgb24")
                kept[j] = _resize(np.ascontiguousarray(rgb[y : y + h, x : x + w]), spec.width, spec.height)
            if j >= last:
                break
    except Exception as exc:
        raise UserError(f"cannot decode video {info.path}: {exc}") from exc
    finally:
        container.close()
    missing = wanted - kept.keys()
    if missing:
        raise UserError(f"video {info.path} changed while it was processed (frame {min(missing)} is missing)")
    return np.stack([kept[j] for j in plan.indices])


def process_pair(path_a, path_b, out_a, out_b, aspect=None) -> dict:
    """Bring two videos to their common spec and write both as H.264 mp4; return what was done."""
    info_a, info_b = probe(path_a), probe(path_b)
    spec, plan_a, plan_b = plan_pair(info_a, info_b, aspect)
    write_video(out_a, render(info_a, plan_a, spec), spec.fps)
    write_video(out_b, render(info_b, plan_b, spec), spec.fps)
    return {
        "spec": spec.summary(),
        "a": {**info_a.summary(), "crop": list(plan_a.crop)},
        "b": {**info_b.summary(), "crop": list(plan_b.crop)},
    }
