"""Largest 4-connected region per frame, in numpy: run-length encoding plus a vectorised union-find.

Each row of each frame is cut into runs of True pixels; runs in adjacent rows of the same frame that
share a column are joined; components are merged by hooking roots to the smaller index and pointer
jumping until nothing changes. Cost grows with the number of runs, not pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FrameRegions:
    """The largest region of a (T, H, W) mask in each frame (area 0 where a frame has none)."""

    area: np.ndarray  # (T,) pixels
    cx: np.ndarray  # (T,) centroid x, pixel-centre units (pixel i has centre i + 0.5); nan without a region
    cy: np.ndarray  # (T,)
    x0: np.ndarray  # (T,) bounding box, columns [x0, x1) and rows [y0, y1)
    x1: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    mask: np.ndarray  # (T, H, W) bool: the pixels of each frame's largest region


def _runs(mask2d: np.ndarray):
    """Runs of True along each row of a (N, W) bool array: (row, start, end) with end exclusive."""
    n, w = mask2d.shape
    padded = np.zeros((n, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask2d
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    return rows, starts, ends


def _components(rows, starts, ends, height: int, width: int) -> np.ndarray:
    """Root run index of each run's 4-connected component (rows of different frames never join)."""
    n = rows.size
    parent = np.arange(n)
    if n < 2:
        return parent
    base = width + 2
    gstart = rows * base + starts
    gend = rows * base + ends
    nxt = (rows + 1) * base
    lo = np.searchsorted(gend, nxt + starts, side="right")
    hi = np.searchsorted(gstart, nxt + ends, side="left")
    counts = np.maximum(hi - lo, 0)
    counts[(rows % height) == height - 1] = 0  # the last row of a frame touches nothing below
    total = int(counts.sum())
    if total == 0:
        return parent
    ea = np.repeat(np.arange(n), counts)
    first = np.cumsum(counts) - counts
    eb = np.repeat(lo, counts) + (np.arange(total) - np.repeat(first, counts))
    while True:
        pa, pb = parent[ea], parent[eb]
        diff = pa != pb
        if not diff.any():
            return parent
        pa, pb = pa[diff], pb[diff]
        np.minimum.at(parent, np.maximum(pa, pb), np.minimum(pa, pb))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def largest_regions(mask: np.ndarray) -> FrameRegions:
    """Per frame of a (T, H, W) bool mask: the largest 4-connected region, its area, centroid and box."""
    mask = np.asarray(mask, dtype=bool)
    t, h, w = mask.shape
    rows, starts, ends = _runs(mask.reshape(t * h, w))
    out = FrameRegions(
        area=np.zeros(t, dtype=np.int64),
        cx=np.full(t, np.nan),
        cy=np.full(t, np.nan),
        x0=np.zeros(t, dtype=np.int64),
        x1=np.zeros(t, dtype=np.int64),
        y0=np.zeros(t, dtype=np.int64),
        y1=np.zeros(t, dtype=np.int64),
        mask=np.zeros((t, h, w), dtype=bool),
    )
    if rows.size == 0:
        return out
    root = _components(rows, starts, ends, h, w)
    length = ends - starts
    comp_area = np.bincount(root, weights=length, minlength=rows.size)
    frame = rows // h
    roots = np.unique(root)
    order = np.lexsort((-comp_area[roots], frame[roots]))
    sorted_roots = roots[order]
    frames_present, first = np.unique(frame[sorted_roots], return_index=True)
    best = np.full(t, -1)
    best[frames_present] = sorted_roots[first]
    sel = root == best[frame]
    r, s, e, f, ln = rows[sel], starts[sel], ends[sel], frame[sel], length[sel]
    y = r % h
    out.area[:] = np.bincount(f, weights=ln, minlength=t).astype(np.int64)
    has = out.area > 0
    sx = np.bincount(f, weights=ln * (s + e) / 2.0, minlength=t)
    sy = np.bincount(f, weights=ln * (y + 0.5), minlength=t)
    out.cx[has] = sx[has] / out.area[has]
    out.cy[has] = sy[has] / out.area[has]
    big = np.iinfo(np.int64).max
    x0 = np.full(t, big)
    y0 = np.full(t, big)
    x1 = np.zeros(t, dtype=np.int64)
    y1 = np.zeros(t, dtype=np.int64)
    np.minimum.at(x0, f, s)
    np.minimum.at(y0, f, y)
    np.maximum.at(x1, f, e)
    np.maximum.at(y1, f, y + 1)
    out.x0[has], out.y0[has], out.x1[has], out.y1[has] = x0[has], y0[has], x1[has], y1[has]
    # Paint the selected runs back into a mask: +1 at each start, -1 at each end, cumulative sum per row.
    marks = np.zeros((t * h, w + 1), dtype=np.int8)
    marks[r, s] = 1
    marks[r, e] = -1
    out.mask = (np.cumsum(marks[:, :w], axis=1) > 0).reshape(t, h, w)
    return out
