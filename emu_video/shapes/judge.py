"""The Shapes World judge: read frames back and say whether they show what a prompt asks for.

Rules (Shapes World v1, thresholds at 128x128 and scaled with the frame size otherwise):
- a pixel belongs to the nearest palette colour (objects and backgrounds) when its RGB distance is < 60;
- an object is the largest 4-connected region of its colour, at least 30 px;
- shape from the region's fill ratio of its bounding box (circle ~0.79, square ~1.0, triangle ~0.5) and
  its corner count (how many of the bounding box's four corners the region fills: 0, 4 and 2);
- motion from the centroid and area averaged over the first and the last 8 frames (8 frames at 16 fps;
  the window scales with the clip's frame rate): left/right/up/down when the centroid travels >= 20 px
  along the axis and < 10 px across it; still when it travels < 6 px and the area changes < 20 %;
  grow when the area grows >= 1.6x, shrink when it falls to <= 0.55x;
- the background is the palette colour that most pixels take (none unless it covers >= 30 % of them);
- temporal consistency: the fraction of frames in which each object is there in its colour with the
  clip's shape; flicker: the largest mean frame-to-frame change of pixels that are background in every
  frame (flicker-free when < 6 and no frame's background drifts >= 12 from its median colour).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from emu_video.errors import UserError
from emu_video.shapes import palette as P
from emu_video.shapes.grammar import ParsedPrompt, parse_prompt
from emu_video.shapes.regions import largest_regions

# Thresholds at 128x128 (distances scale with the frame side, areas with the frame area).
COLOR_DISTANCE = 60.0
MIN_REGION_PX = 30
MOVE_ALONG_PX = 20.0
MOVE_ACROSS_PX = 10.0
STILL_TRAVEL_PX = 6.0
STILL_AREA_CHANGE = 0.20
GROW_RATIO = 1.6
SHRINK_RATIO = 0.55
WINDOW_FRAMES_AT_16FPS = 8
MIN_BACKGROUND_FRACTION = 0.3  # a background covers at least this share of all pixels
FOUND_FRAME_FRACTION = 0.5  # an object is found when its region is there in at least half of the frames
CORNER_PATCH = 0.2  # corner patch side as a fraction of the box side
CORNER_FILLED = 0.5  # a corner counts when the region fills at least this much of its patch
FLICKER_MAX = 6.0  # mean |frame-to-frame change| of the static background, 0..255
DRIFT_MAX = 12.0  # RGB distance of any frame's static background from its median colour
SHAPE_PROTOTYPES = {"circle": (0.785, 0), "square": (1.0, 4), "triangle": (0.5, 2)}


# ------------------------------------------------------------------------------------------- pixels


_LUT: np.ndarray | None = None  # 24-bit RGB -> palette index (-1 none), -2 where not yet computed


def _nearest_palette(rgb: np.ndarray) -> np.ndarray:
    """Palette index of each (N, 3) colour, -1 where the nearest palette colour is 60 or farther."""
    out = np.empty(len(rgb), dtype=np.int8)
    for i in range(0, len(rgb), 1 << 16):
        x = rgb[i : i + (1 << 16)].astype(np.int64)
        d2 = ((x[:, None, :] - P.PALETTE_RGB[None, :, :]) ** 2).sum(-1)  # exact integer distances
        idx = np.argmin(d2, axis=1)
        near = d2[np.arange(idx.size), idx] < COLOR_DISTANCE**2
        out[i : i + len(x)] = np.where(near, idx, -1)
    return out


def classify_pixels(frames: np.ndarray) -> np.ndarray:
    """(T, H, W) int8 palette index (palette.PALETTE_NAMES order) of each pixel, -1 where none is near.

    Colours are looked up in a table over all 2^24 RGB values, filled in as new colours are met.
    """
    global _LUT
    if _LUT is None:
        _LUT = np.full(1 << 24, -2, dtype=np.int8)
    f = np.ascontiguousarray(frames)
    key = (f[..., 0].astype(np.int32) << 16) | (f[..., 1].astype(np.int32) << 8) | f[..., 2]
    labels = _LUT[key]
    todo = labels == -2
    if todo.any():
        keys = key[todo]
        if keys.size > 200_000:  # many new colours (noise): a presence table beats sorting
            seen = np.zeros(1 << 24, dtype=bool)
            seen[keys] = True
            new = np.flatnonzero(seen).astype(np.int32)
        else:
            new = np.unique(keys)
        rgb = np.stack([(new >> 16) & 255, (new >> 8) & 255, new & 255], axis=1)
        _LUT[new] = _nearest_palette(rgb)
        labels = _LUT[key]
    return labels


# -------------------------------------------------------------------------------------------- shapes


def _corner_fills(mask: np.ndarray, x0: int, x1: int, y0: int, y1: int) -> list[float]:
    """Fraction filled of the four corner patches (top-left, top-right, bottom-left, bottom-right)."""
    bw, bh = x1 - x0, y1 - y0
    pw = max(1, int(round(CORNER_PATCH * bw)))
    ph = max(1, int(round(CORNER_PATCH * bh)))
    box = mask[y0:y1, x0:x1]
    patches = (box[:ph, :pw], box[:ph, bw - pw :], box[bh - ph :, :pw], box[bh - ph :, bw - pw :])
    return [np.count_nonzero(p) / p.size for p in patches]


def classify_shape(fill: float, corners: int) -> str:
    """The prototype (fill ratio, corner count) nearest to a region's: circle, square or triangle."""
    best, best_d = "circle", np.inf
    for name, (pf, pc) in SHAPE_PROTOTYPES.items():
        d = abs(fill - pf) / 0.1 + abs(corners - pc) / 1.0
        if d < best_d:
            best, best_d = name, d
    return best


def _frame_shapes(regions, min_px: float) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """Per frame: shape name (None without a region), fill ratio and corner count."""
    t = regions.area.size
    shapes: list[str | None] = [None] * t
    fills = np.full(t, np.nan)
    corners = np.full(t, -1)
    for i in range(t):
        if regions.area[i] < min_px:
            continue
        x0, x1, y0, y1 = (int(v[i]) for v in (regions.x0, regions.x1, regions.y0, regions.y1))
        fill = regions.area[i] / float((x1 - x0) * (y1 - y0))
        n = sum(f >= CORNER_FILLED for f in _corner_fills(regions.mask[i], x0, x1, y0, y1))
        fills[i], corners[i] = fill, n
        shapes[i] = classify_shape(fill, n)
    return shapes, fills, corners


# ----------------------------------------------------------------------------------------------- motion


def motion_criteria(dx: float, dy: float, area_ratio: float, scale: float = 1.0) -> dict[str, bool]:
    """Which motions the measured change satisfies (dx, dy in px, y down; scale = frame side / 128)."""
    out = {}
    for name, (ux, uy) in P.DIRECTIONS.items():
        along = dx * ux + dy * uy
        across = abs(dx * uy - dy * ux)
        out[name] = along >= MOVE_ALONG_PX * scale and across < MOVE_ACROSS_PX * scale
    out["still"] = bool(np.hypot(dx, dy) < STILL_TRAVEL_PX * scale and abs(area_ratio - 1.0) < STILL_AREA_CHANGE)
    out["grow"] = bool(area_ratio >= GROW_RATIO)
    out["shrink"] = bool(area_ratio <= SHRINK_RATIO)
    return out


def _detect_motion(criteria: dict[str, bool]) -> str:
    for name in ("grow", "shrink", "left", "right", "up", "down", "still"):
        if criteria[name]:
            return name
    return "unclear"


# ---------------------------------------------------------------------------------------------- objects


class _Track:
    """The largest region of one palette colour in every frame, with its per-frame shape."""

    def __init__(self, labels: np.ndarray, color_index: int, min_px: float):
        self.color = P.PALETTE_NAMES[color_index]
        self.regions = largest_regions(labels == color_index)
        self.present = self.regions.area >= min_px
        self.frames_found = float(self.present.mean())
        self.found = self.frames_found >= FOUND_FRAME_FRACTION
        self.mean_area = float(self.regions.area[self.present].mean()) if self.present.any() else 0.0
        self._shapes = None
        self._min_px = min_px

    def shapes(self):
        if self._shapes is None:
            self._shapes = _frame_shapes(self.regions, self._min_px)
        return self._shapes


def _r(v, nd: int = 3):
    if v is None:
        return None
    v = float(v)
    return None if not np.isfinite(v) else round(v, nd)


def _judge_object(named, track: _Track | None, frames_rgb, fps: float, scale: float, area_scale: float) -> dict:
    expected_motion = named.motion
    rep: dict[str, Any] = {
        "name": f"{named.color} {named.shape}" + (f" {named.motion}" if named.motion else ""),
        "found": {"ok": False, "frames_found": 0.0, "mean_area": 0.0},
        "color": {"expected": named.color, "detected": None, "ok": False},
        "shape": {"expected": named.shape, "detected": None, "ok": False},
        "motion": {"expected": expected_motion, "detected": None, "ok": None if expected_motion is None else False},
        "temporal": {"consistent_fraction": 0.0, "ok": False},
    }
    if track is None:
        return rep
    t = track.present.size
    rep["found"] = {
        "ok": bool(track.found),
        "frames_found": _r(track.frames_found),
        "mean_area": _r(track.mean_area / area_scale, 1),
    }
    if not track.present.any():  # some pixels of the colour, but never a region large enough
        return rep
    # Colour: the palette colour the region was found in, and its mean RGB in the frames it is present.
    pix = frames_rgb[track.regions.mask & track.present[:, None, None]]
    rep["color"] = {
        "expected": named.color,
        "detected": track.color,
        "ok": track.color == named.color,
        "mean_rgb": [int(round(v)) for v in pix.mean(0)] if pix.size else None,
    }
    # Shape: majority over frames.
    shapes, fills, corners = track.shapes()
    votes = {s: shapes.count(s) for s in P.SHAPES}
    detected_shape = max(P.SHAPES, key=lambda s: votes[s])
    present = track.present
    rep["shape"] = {
        "expected": named.shape,
        "detected": detected_shape,
        "ok": detected_shape == named.shape,
        "fill_ratio": _r(np.nanmedian(fills[present])) if present.any() else None,
        "corners": int(np.median(corners[present])) if present.any() else None,
        "frames_agreeing": _r(votes[detected_shape] / max(1, int(present.sum()))),
        "votes": votes,
    }
    # Temporal: frames where the object is there in its colour with the clip's shape.
    consistent = np.array([s == detected_shape for s in shapes]) & present
    frac = float(consistent.mean())
    rep["temporal"] = {"consistent_fraction": _r(frac), "ok": bool(frac == 1.0)}
    # Motion: first and last windows of 8 frames at 16 fps.
    motion = rep["motion"]
    if t < 2:
        motion["note"] = "one frame: motion not judged"
        motion["ok"] = None
        return rep
    win = max(1, int(round(WINDOW_FRAMES_AT_16FPS * fps / P.FPS)))
    win = min(win, max(1, t // 2))
    first = np.arange(win)
    last = np.arange(t - win, t)
    pf, pl = first[present[first]], last[present[last]]
    if pf.size == 0 or pl.size == 0:
        motion["detected"] = "unclear"
        motion["note"] = "object missing at the start or the end"
        return rep
    reg = track.regions
    dx = (reg.cx[pl].mean() - reg.cx[pf].mean()) / scale
    dy = (reg.cy[pl].mean() - reg.cy[pf].mean()) / scale
    area_ratio = reg.area[pl].mean() / reg.area[pf].mean()
    crit = motion_criteria(dx, dy, area_ratio)  # dx, dy already in 128-px units
    motion.update(
        {
            "detected": _detect_motion(crit),
            "dx": _r(dx, 2),
            "dy": _r(dy, 2),
            "travel": _r(np.hypot(dx, dy), 2),
            "area_ratio": _r(area_ratio),
            "window_frames": win,
        }
    )
    if expected_motion is not None:
        motion["ok"] = bool(crit[expected_motion])
    return rep


# ------------------------------------------------------------------------------------------ background


def _background(counts: np.ndarray, num_pixels: int, expected: str | None) -> tuple[dict, int | None]:
    """The palette colour most pixels take; counts: (T, palette) pixels of each palette colour per frame."""
    totals = counts.sum(0)
    idx = int(np.argmax(totals))
    ok_share = totals[idx] > 0 and totals[idx] >= MIN_BACKGROUND_FRACTION * num_pixels
    detected = P.PALETTE_NAMES[idx] if ok_share else None
    rep = {
        "expected": expected,
        "detected": detected,
        "ok": None if expected is None else detected == expected,
        "fraction": _r(totals[idx] / num_pixels),
    }
    return rep, (idx if detected is not None else None)


def _flicker(labels: np.ndarray, frames_rgb: np.ndarray, bg_index: int | None) -> dict:
    t = labels.shape[0]
    if bg_index is None or t < 2:
        return {"flicker": None, "background_drift": None, "flicker_free": None}
    static = (labels == bg_index).all(axis=0)  # pixels that are background in every frame
    if static.mean() < 0.05:
        return {"flicker": None, "background_drift": None, "flicker_free": False, "note": "no steady background"}
    where = np.flatnonzero(static.ravel())
    where = where[:: max(1, where.size // 4096)]  # a few thousand pixels measure it well enough
    pix = frames_rgb.reshape(t, -1, 3)[:, where].astype(np.float32)  # (T, N, 3)
    jumps = np.abs(np.diff(pix, axis=0)).mean(axis=(1, 2))  # (T-1,)
    means = pix.mean(axis=1)  # (T, 3)
    drift = np.linalg.norm(means - np.median(means, axis=0), axis=1)
    flicker, drift_max = float(jumps.max()), float(drift.max())
    return {
        "flicker": _r(flicker, 2),
        "background_drift": _r(drift_max, 2),
        "flicker_free": bool(flicker < FLICKER_MAX and drift_max < DRIFT_MAX),
    }


# --------------------------------------------------------------------------------------------- public


def _load(video, fps: float | None) -> tuple[np.ndarray, float]:
    if isinstance(video, (str, os.PathLike)):
        from emu_video.io.video import IMAGE_SUFFIXES, read_image, read_video

        if str(video).lower().endswith(IMAGE_SUFFIXES):
            return read_image(video)[None], float(fps or P.FPS)
        v = read_video(video)
        return v.frames, float(fps or v.fps)
    frames = np.asarray(video)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise UserError(f"frames must be shaped (T, H, W, 3) or (H, W, 3), got {tuple(frames.shape)}")
    if frames.dtype != np.uint8:
        raise UserError(f"frames must be uint8, got {frames.dtype}")
    return frames, float(fps or P.FPS)


def judge(video, prompt: str | ParsedPrompt, fps: float | None = None) -> dict:
    """Judge a clip against a prompt in the caption grammar.

    video: a video or image file path, or uint8 frames (T, H, W, 3) (an (H, W, 3) image is one frame);
    fps: the frame rate of `frames` (default 16; a file's own rate otherwise).
    Returns a JSON-serialisable report: per named object found / color / shape / motion / temporal, each
    with `ok` and the measured values; `background`; `temporal`; and `faithful`, true when every named
    attribute matches (motion is not judged on a single frame).
    """
    parsed = parse_prompt(prompt) if isinstance(prompt, str) else prompt
    frames, fps = _load(video, fps)
    t, h, w, _ = frames.shape
    scale = float(np.sqrt(h * w)) / P.SIZE
    area_scale = (h * w) / float(P.SIZE * P.SIZE)
    min_px = MIN_REGION_PX * area_scale
    labels = classify_pixels(frames)

    # Tracks of every object colour with enough pixels somewhere (never the background's colour).
    ncol = len(P.PALETTE_NAMES) + 1
    flat = labels.reshape(t, -1).astype(np.int32) + 1 + np.arange(t, dtype=np.int32)[:, None] * ncol
    counts = np.bincount(flat.ravel(), minlength=t * ncol).reshape(t, ncol)[:, 1:]  # (T, palette) pixels
    background, bg_index = _background(counts, labels.size, parsed.background)
    tracks: dict[str, _Track] = {}
    named_colors = {o.color for o in parsed.objects}
    for i, name in enumerate(P.COLOR_NAMES):
        if i == bg_index or counts[:, i].max() < min_px:
            continue
        tr = _Track(labels, i, min_px)
        if tr.found or name in named_colors:
            tracks[name] = tr
    # Each named object takes the region of its colour; one whose colour is missing takes the largest
    # remaining object region (so that a wrong colour is told apart from a missing object).
    assigned: list[_Track | None] = []
    spare = sorted(
        (tr for name, tr in tracks.items() if name not in named_colors and tr.found),
        key=lambda tr: -tr.mean_area,
    )
    for obj in parsed.objects:
        tr = tracks.get(obj.color)
        if tr is not None and tr.found:
            assigned.append(tr)
        elif spare:
            assigned.append(spare.pop(0))
        else:
            assigned.append(tr)  # None, or a region that is there in too few frames to count as found
    objects = [_judge_object(o, tr, frames, fps, scale, area_scale) for o, tr in zip(parsed.objects, assigned)]

    temporal = _flicker(labels, frames, bg_index)
    fracs = [o["temporal"]["consistent_fraction"] for o in objects]
    temporal["consistent_fraction"] = _r(min(fracs)) if fracs else None
    temporal["ok"] = bool(all(o["temporal"]["ok"] for o in objects) and temporal["flicker_free"] is not False)

    checks = []
    for o in objects:
        checks += [o["found"]["ok"], o["color"]["ok"], o["shape"]["ok"]]
        if o["motion"]["ok"] is not None:
            checks.append(o["motion"]["ok"])
    if background["ok"] is not None:
        checks.append(background["ok"])
    return {
        "prompt": prompt if isinstance(prompt, str) else None,
        "parsed": parsed.to_dict(),
        "num_frames": int(t),
        "fps": _r(fps, 3),
        "size": [int(h), int(w)],
        "faithful": bool(all(checks)),
        "objects": objects,
        "background": background,
        "temporal": temporal,
    }
