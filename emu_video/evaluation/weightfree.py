"""Metrics that need no network weights: temporal flicker and motion magnitude.

All work on luminance Y = 0.299 R + 0.587 G + 0.114 B in grey levels (0-255), area-downsampled so that the
shorter side is at most 64 px (resolution-independent, cheap):

- `motion`: mean |Y_t - Y_{t-1}| over pixels and frame pairs (VBench's temporal-flickering statistic, which
  mixes motion and flicker).
- `flicker`: mean |Y_{t+1} - 2 Y_t + Y_{t-1}|: the temporal second difference, which steady motion and slow
  fades barely excite but frame-to-frame brightness or texture jitter does.
- `motion_vectors`: mean length in pixels of the H.264 motion vectors the encoder stored (PyAV `export_mvs`),
  weighted by block area, divided by the frame width and times 100 (percent of the width). Only streams with
  inter frames have vectors (None otherwise); B-frame vectors may span more than one frame, so this is a
  relative measure between videos encoded alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emu_video.errors import UserError

LUMA = (0.299, 0.587, 0.114)
MAX_SIDE = 64


def luminance(frames: np.ndarray, max_side: int = MAX_SIDE) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float64 (T, h, w) luminance, area-downsampled to at most `max_side` on the short side."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).double()
    y = (x * torch.tensor(LUMA, dtype=torch.float64)).sum(-1)  # (T, H, W)
    h, w = y.shape[-2:]
    scale = max_side / min(h, w)
    if scale < 1:
        y = F.interpolate(y[:, None], size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")[:, 0]
    return y


def motion(frames: np.ndarray) -> float:
    y = luminance(frames)
    if y.shape[0] < 2:
        raise UserError("motion needs at least 2 frames")
    return float((y[1:] - y[:-1]).abs().mean())


def flicker(frames: np.ndarray) -> float:
    y = luminance(frames)
    if y.shape[0] < 3:
        raise UserError("flicker needs at least 3 frames")
    return float((y[2:] - 2 * y[1:-1] + y[:-2]).abs().mean())


def motion_vectors(path) -> float | None:
    """Mean H.264 motion-vector length in percent of the frame width (None when the stream stores none)."""
    import av

    path = Path(path)
    total, weight, width = 0.0, 0.0, None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.options = {"flags2": "+export_mvs"}
            width = stream.codec_context.width
            for frame in container.decode(stream):
                mvs = frame.side_data.get("MOTION_VECTORS")
                if mvs is None:
                    continue
                a = mvs.to_ndarray()
                if a.size == 0:
                    continue
                scale = np.maximum(a["motion_scale"].astype(np.float64), 1)
                length = np.hypot(a["motion_x"] / scale, a["motion_y"] / scale)
                area = a["w"].astype(np.float64) * a["h"]
                total += float((length * area).sum())
                weight += float(area.sum())
    except (av.error.FFmpegError, IndexError) as exc:
        raise UserError(f"cannot read motion vectors of {path}: {exc}") from None
    if weight == 0 or not width:
        return None
    return 100.0 * total / weight / width
