import json

import pytest

from emu_video.data.manifest import (
    ManifestRow,
    read_manifest,
    scan_folder,
    write_manifest,
)
from emu_video.errors import UserError


def test_reads_shapes_world_jsonl(media_dir):
    rows = read_manifest(media_dir / "videos.jsonl")
    assert len(rows) == 6
    assert rows[0].path == str((media_dir / "videos/000000.mp4").resolve())
    assert rows[0].caption and rows[0].is_video
    assert rows[0].metadata["fps"] == 16 and rows[0].metadata["num_frames"] == 65


def test_reads_csv_with_extra_columns(tmp_path):
    (tmp_path / "m.csv").write_text('path,caption,source\nclips/a.mp4,"a dog, running",web\n/abs/b.mp4,,x\n')
    rows = read_manifest(tmp_path / "m.csv")
    assert rows[0].path == str(tmp_path.resolve() / "clips/a.mp4")
    assert rows[0].caption == "a dog, running" and rows[0].metadata == {"source": "web"}
    assert rows[1].path == "/abs/b.mp4" and rows[1].caption == ""


@pytest.mark.parametrize("text, message", [
    ('{"caption": "x"}\n', "no 'path'"),
    ('{"path": "a.mp4"}\n', "no 'caption'"),
    ("not json\n", "not valid JSON"),
    ("\n", "no rows"),
])
def test_bad_jsonl_rows_are_clear_errors(tmp_path, text, message):
    (tmp_path / "m.jsonl").write_text(text)
    with pytest.raises(UserError, match=message):
        read_manifest(tmp_path / "m.jsonl")


def test_csv_needs_path_and_caption_columns(tmp_path):
    (tmp_path / "m.csv").write_text("file,text\na.mp4,x\n")
    with pytest.raises(UserError, match="path and caption"):
        read_manifest(tmp_path / "m.csv")


def test_scan_folder_with_sidecar_captions_and_write_relative(tmp_path, media_dir):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("b.mp4", "a.mp4"):
        (folder / name).write_bytes((media_dir / "videos/000000.mp4").read_bytes())
    (folder / "a.txt").write_text("a caption\n")
    rows = scan_folder(folder, "video", "sidecar")
    assert [r.caption for r in rows] == ["a caption", ""]
    out = write_manifest(folder / "manifest.jsonl", rows)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == {"path": "a.mp4", "caption": "a caption"}
    assert read_manifest(out)[1].path == str((folder / "b.mp4").resolve())
    assert [r.caption for r in scan_folder(folder, "video", "filename")] == ["a", "b"]


def test_scan_folder_without_media_fails(tmp_path):
    with pytest.raises(UserError, match="no video files"):
        scan_folder(tmp_path, "video")
    assert ManifestRow("x.png", "c").is_video is False
