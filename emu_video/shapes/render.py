"""Render a Scene to frames: flat background, anti-aliased shapes by analytic pixel coverage (numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emu_video.shapes import palette as P
from emu_video.shapes.scene import Scene, ShapeObject

_SQRT3_2 = np.float32(np.sqrt(3.0) / 2.0)


def _coverage(obj: ShapeObject, frames: np.ndarray, size: int) -> np.ndarray:
    """(len(frames), size, size) float32 fraction of each pixel the object covers.

    Circle and triangle use a signed-distance ramp one pixel wide; the square's coverage is exact for a
    box-filtered pixel (product of the two 1-D overlaps).
    """
    centres = obj.centres()[frames].astype(np.float32)  # (T, 2)
    sizes = obj.sizes()[frames].astype(np.float32)  # (T,)
    scale = np.float32(size / P.SIZE)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / scale  # pixel centres in 128-px units
    dx = coords[None, None, :] - centres[:, 0, None, None]  # (T, 1, W)
    dy = coords[None, :, None] - centres[:, 1, None, None]  # (T, H, 1)
    s = sizes[:, None, None]
    half = np.float32(0.5) / scale  # half a pixel, in 128-px units
    if obj.shape == "square":
        cx = np.clip((s + half - np.abs(dx)) * scale, 0.0, 1.0)
        cy = np.clip((s + half - np.abs(dy)) * scale, 0.0, 1.0)
        return cx * cy
    if obj.shape == "circle":
        dist = np.sqrt(dx * dx + dy * dy)
        return np.clip((s + half - dist) * scale, 0.0, 1.0)
    # Equilateral triangle, vertex up (y grows downwards): inradius s/2, outward edge normals
    # (0, 1), (+sqrt3/2, -1/2), (-sqrt3/2, -1/2).
    adx = np.abs(dx)
    d_slant = _SQRT3_2 * adx - np.float32(0.5) * dy  # (T, H, W)
    d = np.maximum(d_slant, np.broadcast_to(dy, d_slant.shape)) - s * np.float32(0.5)
    return np.clip((half - d) * scale, 0.0, 1.0)


def render(scene: Scene, frames: Sequence[int] | None = None, size: int = P.SIZE) -> np.ndarray:
    """The clip a scene describes: (65, 128, 128, 3) uint8 at 16 fps.

    frames: frame indices to render (default all 65); size: canvas side in px (default 128; other sizes
    draw the same scene scaled, e.g. 64 for the low-resolution stage).
    """
    idx = np.arange(P.NUM_FRAMES) if frames is None else np.asarray(frames, dtype=np.int64)
    bg = np.asarray(P.BACKGROUNDS[scene.background], dtype=np.float32)
    out = np.empty((len(idx), size, size, 3), dtype=np.float32)
    out[:] = bg
    for obj in scene.objects:
        a = _coverage(obj, idx, size)[..., None]
        col = np.asarray(P.OBJECT_COLORS[obj.color], dtype=np.float32)
        out += a * (col - out)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_image(scene: Scene, size: int = P.SIZE) -> np.ndarray:
    """The scene's first frame, (128, 128, 3) uint8: the image-only variant."""
    return render(scene, frames=[0], size=size)[0]
