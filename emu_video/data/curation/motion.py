"""The motion score of a clip, from the motion vectors of its H.264 stream or, failing those, frame differences.

**Motion vectors** (the paper's signal: "motion signals stored in the H.264 stream"). PyAV decodes with
FFmpeg's ``export_mvs`` flag, so each inter-coded frame carries ``MOTION_VECTORS`` side data: one vector per
predicted block, ``(motion_x, motion_y) / motion_scale`` pixels towards the reference picture the encoder
chose. A frame's value is the block-area-weighted mean vector length, rescaled to a frame whose short side is
512 pixels (the paper's fine-tuning resolution)::

    m_t = (512 / short_side) * sum_b(w_b h_b |v_b|) / sum_b(w_b h_b)

so the unit is *pixels of displacement per coded reference step at 512 px*, the same number for the same
video at any resolution. Intra frames (keyframes) carry no vectors and are left out of the series rather than
counted as still. The paper thresholds "a sliding-window minimum of the motion score" at 0.5 without stating
its units; reading its score as vector length in pixels at its 512 px training size, its 0.5 is our 0.5
(about 0.1 % of the short side; 0.07 % of the diagonal of a square frame).

**Frame differences**, for streams that carry no vectors (intra-only files, codecs FFmpeg exports none for,
such as VP9 or AV1): the mean absolute difference of consecutive frames' luma, on 64 x 64 thumbnails, in grey
levels (0-255). This is not a displacement, so it has its own threshold; the clip records which method
gave its score.

**Sliding-window minimum**: the series is averaged over windows of ``window`` consecutive values (11 by default,
the paper's roughly +-5 frames) and the clip scores the smallest window mean, so one still stretch is enough
to reject a clip. A series shorter than the window scores its mean.
"""

from __future__ import annotations

import numpy as np

MOTION_VECTORS = "motion_vectors"
FRAME_DIFFERENCE = "frame_difference"
METHODS = (MOTION_VECTORS, FRAME_DIFFERENCE)
REFERENCE_SIDE = 512  # motion vector lengths are reported as if the short side were this many pixels
DEFAULT_WINDOW = 11


def motion_vector_magnitude(vectors: np.ndarray, short_side: int) -> float | None:
    """Block-area-weighted mean length of one frame's motion vectors (FFmpeg's AVMotionVector records), in
    pixels at a 512-pixel short side; None for a frame without vectors."""
    if vectors is None or len(vectors) == 0:
        return None
    scale = np.maximum(vectors["motion_scale"].astype(np.float64), 1.0)
    length = np.hypot(vectors["motion_x"], vectors["motion_y"]) / scale
    area = vectors["w"].astype(np.float64) * vectors["h"].astype(np.float64)
    if area.sum() <= 0:
        return None
    return float((area * length).sum() / area.sum() * REFERENCE_SIDE / max(1, short_side))


def frame_difference(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute difference of two grey thumbnails, in grey levels."""
    return float(np.abs(current.astype(np.int16) - previous.astype(np.int16)).mean())


def sliding_window_minimum(series, window: int = DEFAULT_WINDOW) -> float | None:
    """The smallest mean of `window` consecutive values (the mean of all when there are fewer); None if empty."""
    values = np.asarray(list(series), dtype=np.float64)
    if values.size == 0:
        return None
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if values.size <= window:
        return float(values.mean())
    sums = np.convolve(values, np.ones(window), mode="valid")
    return float(sums.min() / window)


def motion_summary(vector_series: list[float], diff_series: list[float], window: int = DEFAULT_WINDOW) -> dict:
    """The clip's motion record: method, sliding-window minimum (`score`), mean and number of values."""
    method, series = (MOTION_VECTORS, vector_series) if vector_series else (FRAME_DIFFERENCE, diff_series)
    score = sliding_window_minimum(series, window)
    return {
        "method": method,
        "score": None if score is None else round(score, 6),
        "mean": round(float(np.mean(series)), 6) if series else None,
        "values": len(series),
        "window": window,
    }
