"""Scene cuts (PySceneDetect over PyAV) on real H.264 files, and splitting a video into its scenes."""

import numpy as np
import pytest
from curation_media import panning, with_cut, write

pytest.importorskip("scenedetect")

from emu_video.data.curation.scenes import detect_cuts, scene_ranges  # noqa: E402
from emu_video.data.curation.split import write_scenes  # noqa: E402
from emu_video.io.video import probe_video, read_video  # noqa: E402


@pytest.mark.parametrize("cut", [20, 27])
def test_a_hard_cut_is_found_within_a_frame_or_two(tmp_path, cut):
    path = write(tmp_path / "cut.mp4", with_cut(48, cut))
    cuts = detect_cuts(str(path), min_scene_frames=8)
    assert len(cuts) == 1 and abs(cuts[0] - cut) <= 2


def test_a_pan_without_cuts_has_none(tmp_path):
    assert detect_cuts(str(write(tmp_path / "pan.mp4", panning(48, 64, step=2))), min_scene_frames=8) == []


def test_scene_ranges_cover_the_video():
    assert scene_ranges(48, [20, 0, 48, 20]) == [(0, 20), (20, 48)]
    assert scene_ranges(10, []) == [(0, 10)]


def test_split_writes_each_kept_scene_as_a_playable_mp4(tmp_path):
    frames = with_cut(48, 20)
    source = write(tmp_path / "cut.mp4", frames)
    first, second = tmp_path / "clips/a.mp4", tmp_path / "clips/b.mp4"
    written = write_scenes(str(source), [(0, 20), (20, 40), (40, 48)], [first, second, None])
    assert written == [first, second] and not list((tmp_path / "clips").glob(".*"))
    for path, (a, b) in ((first, (0, 20)), (second, (20, 40))):
        info = probe_video(path)
        assert (info["frames"], info["fps"], info["codec"], info["pix_fmt"]) == (b - a, 16.0, "h264", "yuv420p")
        decoded = read_video(path).frames.astype(np.int16)
        assert np.abs(decoded - frames[a:b]).mean() < 12  # the same pictures (after two lossy encodes)
