"""The motion score on real H.264 / MJPEG files: its units (a known pan), moving above still by motion vectors
and by the frame-difference fallback, and the sliding-window minimum against a direct computation."""

import numpy as np
import pytest
from curation_media import panning, write

from emu_video.data.curation.motion import (
    FRAME_DIFFERENCE,
    MOTION_VECTORS,
    REFERENCE_SIDE,
    motion_summary,
    sliding_window_minimum,
)
from emu_video.data.curation.scan import scan_clip

P_ONLY = {"x264-params": "bframes=0:ref=1"}  # every vector points one frame back


def _summary(path):
    scan = scan_clip(str(path))
    return motion_summary(scan.vector_series, scan.diff_series), scan


def test_a_known_pan_scores_its_displacement_in_pixels_at_a_512_px_short_side(tmp_path):
    # a texture moving 3 px per frame in a 128 px frame, each P-frame predicted from the one before:
    # every block's vector is 3 px, i.e. 3 * 512 / 128 = 12 at the reference size
    summary, scan = _summary(write(tmp_path / "pan.mp4", panning(24, 128, step=3), options=P_ONLY))
    assert summary["method"] == MOTION_VECTORS and summary["values"] == 23  # every frame but the keyframe
    assert summary["mean"] == pytest.approx(3 * REFERENCE_SIDE / 128, rel=0.05)
    # the same pan at twice the size moves 6 px per frame: the same score
    summary64, _ = _summary(write(tmp_path / "pan256.mp4", panning(24, 256, step=6), options=P_ONLY))
    assert summary64["mean"] == pytest.approx(summary["mean"], rel=0.05)


def test_moving_content_scores_above_still_content_by_motion_vectors(tmp_path):
    moving, _ = _summary(write(tmp_path / "moving.mp4", panning(32, 64, step=2)))
    still, _ = _summary(write(tmp_path / "still.mp4", panning(32, 64, step=0)))
    assert moving["method"] == still["method"] == MOTION_VECTORS  # default x264: P and B frames
    assert still["score"] < 0.5 < moving["score"]


@pytest.mark.parametrize("codec, suffix, options, pix_fmt", [
    ("libx264", ".mp4", {"g": "1"}, "yuv420p"),  # intra-only H.264: no vectors at all
    ("mjpeg", ".avi", {}, "yuvj420p"),  # another codec
])
def test_streams_without_vectors_fall_back_to_frame_differences(tmp_path, codec, suffix, options, pix_fmt):
    moving, scan = _summary(write(tmp_path / f"moving{suffix}", panning(24, 64, step=2), codec=codec,
                                  options=options, pix_fmt=pix_fmt))
    still, _ = _summary(write(tmp_path / f"still{suffix}", panning(24, 64, step=0), codec=codec,
                              options=options, pix_fmt=pix_fmt))
    assert scan.vector_series == []
    assert moving["method"] == still["method"] == FRAME_DIFFERENCE
    assert still["score"] < 2.0 < moving["score"]  # the default --min-motion-diff sits between them


def test_a_still_stretch_sets_the_sliding_window_minimum(tmp_path):
    frames = np.concatenate([panning(16, 64, step=2), np.repeat(panning(1, 64)[:1], 16, axis=0),
                             panning(16, 64, step=2)])
    summary, _ = _summary(write(tmp_path / "pause.mp4", frames, options=P_ONLY))
    assert summary["mean"] > 4 * summary["score"] and summary["score"] < 0.5


def test_sliding_window_minimum_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    series = rng.random(40) * 5
    direct = min(series[i:i + 11].mean() for i in range(len(series) - 10))
    assert sliding_window_minimum(series, 11) == pytest.approx(direct)
    assert sliding_window_minimum(series[:7], 11) == pytest.approx(series[:7].mean())
    assert sliding_window_minimum([], 11) is None
