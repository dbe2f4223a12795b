"""Bringing a pair of real mp4 files to one spec: aspect crop, size, duration and frame rate."""

import numpy as np
import pytest
from juice_helpers import frame_index, make_video

from emu_video.errors import UserError
from emu_video.io.video import probe_video, read_video
from emu_video.juice.process import centre_crop_box, plan_pair, probe, process_pair


def test_landscape_vs_square_lower_fps_longer(tmp_path):
    # A: 96x64 (3:2) with red/blue side bands, 24 fps, 24 frames = 1.00 s
    # B: 48x48, 16 fps, 20 frames = 1.25 s
    make_video(tmp_path / "a.mp4", 96, 64, 24, 24, border=16)
    make_video(tmp_path / "b.mp4", 48, 48, 20, 16)
    info = process_pair(tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "oa.mp4", tmp_path / "ob.mp4")
    assert info["spec"] == {"width": 48, "height": 48, "fps": 16.0, "num_frames": 16, "duration": 1.0}
    assert info["a"]["crop"] == [16, 0, 64, 64]
    va, vb = read_video(tmp_path / "oa.mp4"), read_video(tmp_path / "ob.mp4")
    assert va.frames.shape == vb.frames.shape == (16, 48, 48, 3)
    assert va.fps == vb.fps == 16.0
    # The side bands are gone: red and blue channels stay as grey as green.
    assert np.abs(va.frames[..., 0].astype(int) - va.frames[..., 1]).max() < 12
    assert np.abs(va.frames[..., 2].astype(int) - va.frames[..., 1]).max() < 12
    # A (same duration) keeps its whole second: nearest 24 fps frames of t = k/16.
    got_a = [round(frame_index(f)) for f in va.frames]
    assert got_a == [0, 1, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22]
    # B (1.25 s) is cut to its middle second: frames 2..17.
    got_b = [round(frame_index(f)) for f in vb.frames]
    assert got_b == list(range(2, 18))
    for p in (tmp_path / "oa.mp4", tmp_path / "ob.mp4"):
        meta = probe_video(p)
        assert (meta["codec"], meta["pix_fmt"], meta["frames"]) == ("h264", "yuv420p", 16)


def test_portrait_vs_landscape_goes_square_and_sizes_even(tmp_path):
    make_video(tmp_path / "a.mp4", 50, 90, 10, 10)  # portrait, odd-looking sizes
    make_video(tmp_path / "b.mp4", 160, 90, 12, 12)  # landscape
    a, b = probe(tmp_path / "a.mp4"), probe(tmp_path / "b.mp4")
    spec, pa, pb = plan_pair(a, b)
    assert spec.width == spec.height == 50
    assert pa.crop == (0, 20, 50, 50) and pb.crop == (35, 0, 90, 90)
    assert spec.fps == 10 and spec.num_frames == 10


def test_forced_aspect_and_odd_sizes(tmp_path):
    make_video(tmp_path / "a.mp4", 128, 72, 8, 8)
    make_video(tmp_path / "b.mp4", 100, 76, 8, 8)
    a, b = probe(tmp_path / "a.mp4"), probe(tmp_path / "b.mp4")
    spec, _, _ = plan_pair(a, b)  # both landscape: the more square one (100x76 ~ 1.32) sets the ratio
    assert spec.height % 2 == 0 and spec.width % 2 == 0
    assert spec.width / spec.height == pytest.approx(100 / 76, rel=0.03)
    spec, pa, pb = plan_pair(a, b, aspect="1:1")
    assert (spec.width, spec.height) == (72, 72) and pa.crop == (28, 0, 72, 72) and pb.crop == (12, 0, 76, 76)
    with pytest.raises(UserError, match="aspect"):
        plan_pair(a, b, aspect="wide")


def test_ntsc_rates_and_same_spec_is_identity(tmp_path):
    make_video(tmp_path / "a.mp4", 64, 64, 30, 30000 / 1001)
    make_video(tmp_path / "b.mp4", 64, 64, 30, 30000 / 1001)
    a, b = probe(tmp_path / "a.mp4"), probe(tmp_path / "b.mp4")
    spec, pa, pb = plan_pair(a, b)
    assert spec.num_frames == 30 and spec.fps == pytest.approx(29.97, abs=1e-3)
    assert pa.indices == tuple(range(30)) and pa.crop == (0, 0, 64, 64)
    process_pair(tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "oa.mp4", tmp_path / "ob.mp4")
    out = read_video(tmp_path / "oa.mp4")
    assert out.frames.shape[0] == 30 and out.fps == pytest.approx(29.97, abs=1e-3)
    assert [round(frame_index(f)) for f in out.frames] == list(range(30))


def test_gif_input(tmp_path):
    make_video(tmp_path / "a.gif", 40, 40, 10, 10)
    make_video(tmp_path / "b.mp4", 64, 64, 16, 16)
    info = process_pair(tmp_path / "a.gif", tmp_path / "b.mp4", tmp_path / "oa.mp4", tmp_path / "ob.mp4")
    assert info["spec"]["width"] == 40 and info["spec"]["fps"] == 10.0 and info["spec"]["num_frames"] == 10
    assert read_video(tmp_path / "ob.mp4").frames.shape == (10, 40, 40, 3)


def test_bad_inputs(tmp_path):
    make_video(tmp_path / "b.mp4", 64, 64, 8, 8)
    (tmp_path / "broken.mp4").write_bytes(b"\x00not a video at all" * 20)
    with pytest.raises(UserError, match="broken.mp4"):
        process_pair(tmp_path / "broken.mp4", tmp_path / "b.mp4", tmp_path / "x.mp4", tmp_path / "y.mp4")
    with pytest.raises(UserError, match="not found"):
        probe(tmp_path / "missing.mp4")


def test_centre_crop_box():
    assert centre_crop_box(1920, 1080, 1.0) == (420, 0, 1080, 1080)
    assert centre_crop_box(1080, 1920, 1.0) == (0, 420, 1080, 1080)
    assert centre_crop_box(512, 512, 16 / 9) == (0, 112, 512, 288)
