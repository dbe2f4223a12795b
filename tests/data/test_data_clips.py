import media_helpers
import numpy as np
import pytest
import torch

from emu_video.data.datasets import MediaSource, PixelDataset, Skipped
from emu_video.data.decode import decode_clip, decode_image
from emu_video.data.frames import (
    ClipSpec,
    SampleSkipped,
    clip_indices,
    sample_rng,
    to_model_pixels,
)
from emu_video.io.video import read_video, write_video


def test_clip_indices_follow_the_shapes_world_recipe():
    rng = sample_rng(0, 0, 0)
    # The video model sees 4 fps: frames 0, 4, ..., 60 of a 65-frame 16 fps clip.
    assert clip_indices(65, 16, ClipSpec(16, 4, "first"), rng) == list(range(0, 61, 4))
    assert clip_indices(65, 16, ClipSpec(8, 4, "first"), rng) == list(range(0, 29, 4))
    # The interpolation model: 37 consecutive frames at 16 fps.
    idx = clip_indices(65, 16, ClipSpec(37, 16, "random"), rng)
    assert idx == list(range(idx[0], idx[0] + 37)) and 0 <= idx[0] <= 28
    assert clip_indices(65, 16, ClipSpec(16, 4, "center"), rng)[0] == 2


def test_random_clip_start_covers_every_position_and_is_reproducible():
    starts = {clip_indices(20, 10, ClipSpec(3, 5, "random"), sample_rng(1, 0, i))[0] for i in range(200)}
    assert starts == set(range(0, 16))
    a = clip_indices(300, 30, ClipSpec(8, 8, "random"), sample_rng(7, 3, 11))
    assert a == clip_indices(300, 30, ClipSpec(8, 8, "random"), sample_rng(7, 3, 11))
    assert a != clip_indices(300, 30, ClipSpec(8, 8, "random"), sample_rng(7, 4, 11))


def test_too_short_raises_skip():
    with pytest.raises(SampleSkipped) as err:
        clip_indices(30, 16, ClipSpec(16, 4), sample_rng(0, 0, 0))
    assert err.value.reason == "too_short"


def test_model_pixels_crop_resize_normalise():
    frames = np.zeros((2, 40, 60, 3), dtype=np.uint8)
    frames[:, :, 10:50] = 255  # the centred 40x40 square is white, the sides black
    x = to_model_pixels(frames, 16)
    assert x.shape == (3, 2, 16, 16) and x.dtype == torch.float32
    assert torch.allclose(x, torch.ones_like(x), atol=1e-3)
    img = to_model_pixels(np.zeros((8, 8, 3), dtype=np.uint8), 4)
    assert img.shape == (3, 4, 4) and float(img.max()) == -1.0


def test_decode_clip_matches_the_decoded_file(media_dir):
    path = media_dir / "videos/000001.mp4"
    full = read_video(path).frames
    clip = decode_clip(path, ClipSpec(16, 4, "first"), sample_rng(0, 0, 0))
    assert clip.shape == (16, *full.shape[1:])
    np.testing.assert_array_equal(clip, full[0:61:4])
    from_bytes = decode_clip(path.read_bytes(), ClipSpec(16, 4, "first"), sample_rng(0, 0, 0))
    np.testing.assert_array_equal(from_bytes, clip)


def test_decode_seeks_into_long_videos(tmp_path):
    frames = np.stack([np.full((16, 16, 3), i * 2, dtype=np.uint8) for i in range(100)])
    path = write_video(tmp_path / "long.mp4", frames, fps=10)
    clip = decode_clip(path, ClipSpec(4, 2, "center"), sample_rng(0, 0, 0))  # starts at frame 42 (4.2 s)
    np.testing.assert_array_equal(clip, read_video(path).frames[[42, 47, 52, 57]])


def test_decode_image_from_png_and_from_video_frame(media_dir):
    img = decode_image(media_dir / "images/000000.png", sample_rng(0, 0, 0))
    assert img.shape == (128, 128, 3) or img.shape[2] == 3
    frame = decode_image(media_dir / "videos/000000.mp4", sample_rng(0, 0, 3))
    assert frame.ndim == 3


def test_broken_files_are_skipped_with_reasons(tmp_path, media_dir):
    spec, rng = ClipSpec(8, 4), sample_rng(0, 0, 0)
    cases = {
        "missing": tmp_path / "nope.mp4",
        "unreadable": media_helpers.write_corrupt_video(tmp_path / "bad.mp4"),
    }
    truncated = media_helpers.write_truncated_video(media_dir / "videos/000002.mp4", tmp_path / "cut.mp4")
    for reason, path in cases.items():
        with pytest.raises(SampleSkipped) as err:
            decode_clip(path, spec, rng)
        assert err.value.reason == reason and str(path) in str(err.value)
    with pytest.raises(SampleSkipped) as err:
        decode_clip(truncated, ClipSpec(16, 4, "first"), rng)
    assert err.value.reason in ("unreadable", "too_short")


def test_dataset_returns_skip_markers_not_substitutes(tmp_path, media_dir):
    rows = [{"path": str(media_dir / "videos/000000.mp4"), "caption": "ok"},
            {"path": str(media_helpers.write_corrupt_video(tmp_path / "bad.mp4")), "caption": "bad"}]
    manifest = media_helpers.write_manifest_lines(tmp_path / "m.jsonl", rows)
    ds = PixelDataset(MediaSource([str(manifest)]), "video", 32, ClipSpec(8, 4, "random"), seed=3)
    good = ds[(0, 0)]
    assert good["pixels"].shape == (3, 8, 32, 32) and good["caption"] == "ok" and good["index"] == 0
    assert torch.equal(good["pixels"], ds[(0, 0)]["pixels"])  # the same key is the same clip
    bad = ds[(0, 1)]
    assert isinstance(bad, Skipped) and bad.reason == "unreadable" and bad.index == 1
