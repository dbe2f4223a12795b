"""Near-duplicates by perceptual hashes of real decoded frames: a rescaled re-encode is found, other content
is not, and the preferred copy (listed first) is the one kept."""

from curation_media import panning, write

from emu_video.data.curation.duplicates import clip_hashes, find_duplicates
from emu_video.data.curation.scan import scan_clip


def _hashes(path):
    return clip_hashes(scan_clip(str(path)).thumbnails)


def test_a_rescaled_reencode_is_a_duplicate_and_other_content_is_not(tmp_path):
    frames = panning(24, 128, step=2, seed=5)
    original = _hashes(write(tmp_path / "a.mp4", frames))
    small = _hashes(write(tmp_path / "b.mp4", frames[:, ::2, ::2].copy(), options={"crf": "30"}))
    other = _hashes(write(tmp_path / "c.mp4", panning(24, 128, step=2, seed=6)))
    assert len(original) == 3
    found = find_duplicates([("a", original), ("b", small), ("c", other)])
    assert found == {"b": "a"}
    assert find_duplicates([("a", original), ("b", small)], max_distance=-1) == {}
