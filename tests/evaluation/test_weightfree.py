"""Weight-free metrics on hand-computable clips and on real H.264 files."""

from __future__ import annotations

import numpy as np
import pytest

from emu_video.evaluation.weightfree import flicker, luminance, motion, motion_vectors
from emu_video.io.video import write_video


def _grey(levels) -> np.ndarray:
    return np.stack([np.full((16, 24, 3), v, np.uint8) for v in levels])


def test_frame_difference_metrics_on_known_clips():
    assert motion(_grey([100] * 5)) == 0 and flicker(_grey([100] * 5)) == 0
    fade = _grey([10, 20, 30, 40, 50])  # steady fade: every frame differs by 10, no acceleration
    assert motion(fade) == pytest.approx(10.0) and flicker(fade) == pytest.approx(0.0, abs=1e-9)
    strobe = _grey([100, 120, 100, 120, 100])  # alternating: |second difference| is 2 x 20 every step
    assert motion(strobe) == pytest.approx(20.0) and flicker(strobe) == pytest.approx(40.0)
    rgb = np.zeros((1, 4, 4, 3), np.uint8)
    rgb[..., 1] = 200  # pure green: Y = 0.587 x 200
    assert float(luminance(rgb).mean()) == pytest.approx(117.4)
    big = np.zeros((2, 256, 512, 3), np.uint8)
    assert tuple(luminance(big).shape) == (2, 64, 128)  # area-downsampled to 64 on the short side


def _moving_block(speed: int, n: int = 12, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)  # textured, so the encoder finds the motion
    frames = np.full((n, size, size, 3), 40, np.uint8)
    for t in range(n):
        x = 8 + speed * t
        frames[t, 36:60, x : x + 24] = texture
    return frames


def test_h264_motion_vectors_follow_the_speed(tmp_path):
    still = motion_vectors(write_video(tmp_path / "still.mp4", _moving_block(0), fps=8))
    slow = motion_vectors(write_video(tmp_path / "slow.mp4", _moving_block(2), fps=8))
    fast = motion_vectors(write_video(tmp_path / "fast.mp4", _moving_block(5), fps=8))
    assert still is not None and still < 0.05
    assert slow > still and fast > 1.5 * slow
