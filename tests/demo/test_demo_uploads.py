"""Uploads are refused with one sentence naming the upload: wrong type, too large, empty, corrupt, too long."""

import numpy as np
import pytest
from media_helpers import write_corrupt_video, write_truncated_video

from emu_video.demo.uploads import UploadLimits, file_size, load_image, load_video
from emu_video.errors import UserError
from emu_video.io.video import write_image, write_video


def _frames(n, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_good_uploads_decode(tmp_path):
    image = _frames(1, 24)[0]
    assert np.array_equal(load_image(write_image(tmp_path / "a.png", image), UploadLimits()), image)
    video = load_video(write_video(tmp_path / "v.gif", _frames(8), fps=4), UploadLimits())
    assert video.frames.shape == (8, 32, 32, 3) and video.fps == pytest.approx(4.0)
    mp4 = load_video(write_video(tmp_path / "v.mp4", _frames(16), fps=4), UploadLimits())
    assert mp4.num_frames == 16 and mp4.fps == 4.0


def test_wrong_type_and_missing(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match=r"^notes.txt is not an image file: upload one of PNG, JPG, JPEG, BMP, WEBP$"):
        load_image(tmp_path / "notes.txt", UploadLimits())
    with pytest.raises(UserError, match="is not a video file"):
        load_video(write_image(tmp_path / "a.png", _frames(1)[0]), UploadLimits())
    with pytest.raises(UserError, match="no image uploaded"):
        load_image(None, UploadLimits())


def test_too_large_in_bytes_pixels_and_frames(tmp_path):
    png = write_image(tmp_path / "big.png", _frames(1, 64)[0])  # random pixels: about 12 KB
    with pytest.raises(UserError, match=r"^big.png is too large \(1\d KB; at most 10 KB\)$"):
        load_image(png, UploadLimits(max_bytes=10 * 1024))
    with pytest.raises(UserError, match=r"^big.png is too large \(64x64 px; at most 4,000 pixels\)$"):
        load_image(png, UploadLimits(max_pixels=4000))
    mp4 = write_video(tmp_path / "wide.mp4", _frames(8, 64), fps=4)
    with pytest.raises(UserError, match=r"wide.mp4 is too large \(64x64 px"):
        load_video(mp4, UploadLimits(max_pixels=4000))
    with pytest.raises(UserError, match=r"^wide.mp4 is too long \(over 6 frames\)$"):
        load_video(mp4, UploadLimits(max_frames=6))
    assert load_video(mp4, UploadLimits(max_frames=8)).num_frames == 8


def test_corrupt_and_empty_files(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(UserError, match=r"^broken.png is not a readable image \(corrupt, or not really PNG\)$"):
        load_image(tmp_path / "broken.png", UploadLimits())
    good = write_image(tmp_path / "good.png", _frames(1, 64)[0]).read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])  # a valid header, then the data stops
    with pytest.raises(UserError, match=r"^cut.png is not a readable image \(corrupt or truncated\)$"):
        load_image(tmp_path / "cut.png", UploadLimits())
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(UserError, match=r"^empty.jpg is empty"):
        load_image(tmp_path / "empty.jpg", UploadLimits())
    with pytest.raises(UserError, match=r"^bad.mp4 is not a readable video \(corrupt, or not really MP4\)$"):
        load_video(write_corrupt_video(tmp_path / "bad.mp4"), UploadLimits())
    src = write_video(tmp_path / "src.mp4", _frames(16), fps=4)
    with pytest.raises(UserError, match="cut.mp4 is not a readable video"):
        load_video(write_truncated_video(src, tmp_path / "cut.mp4"), UploadLimits())


def test_file_size():
    assert [file_size(n) for n in (0, 1000, 12 * 1024, 2**20 - 1, 3 * 2**20 + 2**19)] == [
        "1 KB", "1 KB", "12 KB", "1024 KB", "3.5 MB"]


def test_the_name_given_replaces_the_server_path(tmp_path):
    (tmp_path / "upload-1234.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"^holiday.png is not a readable image"):
        load_image(tmp_path / "upload-1234.png", UploadLimits(), name="holiday.png")
