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


BAD = b"caf\xe9 \xb2 latin-1"  # not UTF-8


def _jsonl_with_a_bad_caption(tmp_path, media_dir):
    lines = [json.dumps({"path": str(media_dir / f"videos/{i:06d}.mp4"), "caption": f"clip {i}"}).encode()
             for i in range(3)]
    lines.insert(1, b'{"path": "' + str(media_dir / "videos/000004.mp4").encode() + b'", "caption": "' + BAD + b'"}')
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_caption_that_is_not_utf8_is_one_bad_row(tmp_path, media_dir, caplog):
    rows = read_manifest(_jsonl_with_a_bad_caption(tmp_path, media_dir))
    good = [rows[0]] + rows[2:]
    assert [r.caption for r in good] == ["clip 0", "clip 1", "clip 2"] and not any(r.problem for r in good)
    assert rows[1].problem.endswith("m.jsonl:2: caption or metadata is not UTF-8")
    assert rows[1].caption == "caf\ufffd \ufffd latin-1"
    assert "1 of 4 row(s) will be skipped" in caplog.text and "m.jsonl:2" in caplog.text
    # CSV, and a JSON escape of a lone surrogate (text that cannot be written as UTF-8 either).
    (tmp_path / "m.csv").write_bytes(b"path,caption,src\na.mp4,fine,x\nb.mp4," + BAD + b",x\nc.mp4,ok,\xff\n")
    rows = read_manifest(tmp_path / "m.csv")
    assert [bool(r.problem) for r in rows] == [False, True, True] and rows[2].metadata == {"src": "\ufffd"}
    (tmp_path / "s.jsonl").write_text('{"path": "a.mp4", "caption": "\\udcb2"}\n{"path": "b.mp4", "caption": "b"}\n')
    assert [bool(r.problem) for r in read_manifest(tmp_path / "s.jsonl")] == [True, False]
    # The rest of the rows are written out again; the bad one is left out.
    out = write_manifest(tmp_path / "out" / "m.jsonl", read_manifest(tmp_path / "m.jsonl"))
    assert [json.loads(line)["caption"] for line in out.read_text().splitlines()] == ["clip 0", "clip 1", "clip 2"]


def test_training_skips_and_counts_a_bad_caption_like_a_corrupt_video(tmp_path, media_dir):
    from emu_video.data.datasets import MediaSource, PixelDataset
    from emu_video.data.frames import ClipSpec
    from emu_video.data.loader import BatchStream

    ds = PixelDataset(MediaSource([str(_jsonl_with_a_bad_caption(tmp_path, media_dir))]), "video", 16,
                      ClipSpec(4, 4, "random"), seed=0)
    stream = BatchStream(ds, batch_size=3, shuffle=False)
    batch = stream.next_batch()
    assert batch["index"] == [0, 2, 3] and batch["caption"] == ["clip 0", "clip 1", "clip 2"]
    assert stream.state_dict()["skipped"] == {"unreadable": 1}


def test_prepare_data_skips_a_sidecar_that_is_not_utf8(tmp_path, media_dir, capsys):
    from emu_video.cli.main import main

    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / f"{name}.mp4").write_bytes((media_dir / "videos/000000.mp4").read_bytes())
        (folder / f"{name}.txt").write_bytes(BAD if name == "b" else f"clip {name}".encode())
    rows = scan_folder(folder, "video", "sidecar")
    assert [bool(r.problem) for r in rows] == [False, True, False] and "b.txt: caption not UTF-8" in rows[1].problem
    manifest, shards = tmp_path / "m.jsonl", tmp_path / "shards"
    assert main(["prepare-data", "--folder", str(folder), "--out", str(manifest), "--shards", str(shards)]) == 0
    out = capsys.readouterr().out
    assert "2 files (1 skipped:" in out and "b.txt" in out
    assert [json.loads(line)["caption"] for line in manifest.read_text().splitlines()] == ["clip a", "clip c"]
    assert len(list(shards.glob("*.tar"))) == 1
    # Shards from a manifest holding a bad row: the rest are packed.
    from emu_video.data.shards import ShardReader, write_shards

    paths = write_shards(read_manifest(_jsonl_with_a_bad_caption(tmp_path, media_dir)), tmp_path / "s2")
    assert len(ShardReader([str(p) for p in paths])) == 3


def test_prepare_data_refuses_bad_counts_before_any_work(tmp_path, capsys):
    from emu_video.cli.main import main

    for args, message in [(["--per-shard", "0"], "--per-shard must be at least 1"),
                          (["--batch-size", "0"], "--batch-size must be at least 1"),
                          (["--workers", "-2"], "--workers must be at least 0")]:
        assert main(["prepare-data", "--folder", str(tmp_path / "none"), *args]) == 2
        assert message in capsys.readouterr().err
