"""`curate` end to end on real mp4 files: the still clip and the duplicate are dropped, the moving clip kept,
the video with a hard cut split into its two scenes, corrupt / truncated / missing files counted and listed;
the curated manifest reads back and its clips decode; a rerun measures nothing again."""

import json

import numpy as np
import pytest
from curation_media import panning, with_cut, write
from media_helpers import (
    write_corrupt_video,
    write_manifest_lines,
    write_truncated_video,
)

pytest.importorskip("scenedetect")
pytest.importorskip("imagehash")

from emu_video.data.curation import pipeline  # noqa: E402
from emu_video.data.curation.filters import Thresholds  # noqa: E402
from emu_video.data.curation.measure import MeasureSettings  # noqa: E402
from emu_video.data.decode import decode_clip  # noqa: E402
from emu_video.data.frames import ClipSpec  # noqa: E402
from emu_video.data.manifest import read_manifest  # noqa: E402

SMALL = Thresholds(min_seconds=1.0, min_side=32, min_fps=8)


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    moving = panning(32, 64, step=2, seed=3)
    write(root / "moving.mp4", moving)
    write(root / "still.mp4", panning(32, 64, step=0, seed=4))
    write(root / "cut.mp4", with_cut(48, 24))
    write(root / "copy.mp4", moving[:, ::2, ::2].copy(), options={"crf": "28"})  # a smaller re-encode of moving
    write_corrupt_video(root / "corrupt.mp4")
    write_truncated_video(root / "moving.mp4", root / "truncated.mp4")
    rows = [{"path": f"{name}.mp4", "caption": f"{name} clip", "tag": name}
            for name in ("moving", "still", "cut", "copy", "corrupt", "truncated", "missing")]
    return write_manifest_lines(root / "videos.jsonl", rows)


def _clips(report):
    return {c["id"].split("/")[-1]: c for c in json.loads(report.read_text())["clips"]}


def test_curate_keeps_moving_clips_splits_cuts_and_lists_unreadable_files(tmp_path, dataset):
    out = tmp_path / "curated"
    result = pipeline.curate(dataset, out, SMALL, progress=False)
    assert (result.rows, result.clips, result.kept, result.measured) == (7, 5, 3, 7)
    assert sorted(u["path"].split("/")[-1] for u in result.unreadable) == ["corrupt.mp4", "missing.mp4",
                                                                            "truncated.mp4"]
    assert all(u["error"] for u in result.unreadable)
    clips = _clips(result.report)
    assert clips["moving.mp4"]["kept"] and clips["moving.mp4"]["motion"]["method"] == "motion_vectors"
    assert not clips["still.mp4"]["kept"] and clips["still.mp4"]["reasons"][0].startswith("low motion")
    assert clips["copy.mp4"]["reasons"] == [f"duplicate of {dataset.parent / 'moving.mp4'}"]
    scenes = sorted((c for c in clips.values() if c["segment"]), key=lambda c: c["segment"])
    assert [c["kept"] for c in scenes] == [True, True]
    assert abs(scenes[0]["segment"][1] - 24) <= 2 and scenes[1]["segment"][1] == 48
    report = json.loads(result.report.read_text())
    assert report["counts"] == {"rows": 7, "clips": 5, "kept": 3, "dropped": 2, "unreadable": 3}
    assert report["thresholds"]["min_motion"] == 0.5 and report["thresholds"]["min_clip_score"] == 0.25
    assert {p.name for p in result.plots} == {"motion_vectors.png", "duration.png"}
    assert all(p.stat().st_size > 1000 for p in result.plots)

    # the curated manifest reads back: the kept clips, their captions and metadata, and their frames decode
    rows = read_manifest(result.manifest)
    assert sorted(r.caption for r in rows) == ["cut clip", "cut clip", "moving clip"]
    for row in rows:
        assert row.metadata["tag"] in ("moving", "cut") and row.metadata["curation"]["motion"] > 0.5
        clip = decode_clip(row.path, ClipSpec(8, 8.0, "first"), np.random.default_rng(0))
        assert clip.shape == (8, 64, 64, 3)
        assert row.metadata["num_frames"] == {"moving": 32, "cut": row.metadata.get("source_frames", [0, 0])[1]
                                              - row.metadata.get("source_frames", [0, 0])[0]}[row.metadata["tag"]]
    assert sum(1 for r in rows if r.path.startswith(str((out / "clips").resolve()))) == 2


def test_a_rerun_measures_nothing_again_and_applies_new_thresholds(tmp_path, dataset, monkeypatch):
    out = tmp_path / "curated"
    pipeline.curate(dataset, out, SMALL, progress=False)
    with open(out / "scores.jsonl", "a") as fh:
        fh.write('{"key": "cut short by a cra')  # a line cut short by a crash is ignored
    calls = []

    def counting(path, settings):
        calls.append(path)
        from emu_video.data.curation.measure import measure_row

        return measure_row(path, settings)

    monkeypatch.setattr(pipeline, "measure_row", counting)
    strict = Thresholds(min_seconds=1.0, min_side=32, min_fps=8, min_motion=1000.0)
    again = pipeline.curate(dataset, out, strict, progress=False)
    assert calls == [] and again.measured == 0 and again.kept == 0  # re-decided from the recorded scores
    assert read_manifest_or_empty(again.manifest) == []

    extra = dataset.parent / "more.mp4"
    write(extra, panning(32, 64, step=3, seed=9))
    with open(dataset, "a") as fh:
        fh.write(json.dumps({"path": "more.mp4", "caption": "one more"}) + "\n")
    third = pipeline.curate(dataset, out, SMALL, progress=False)
    assert calls == [str(extra)] and third.measured == 1 and third.kept == 4


def read_manifest_or_empty(path):
    return [line for line in path.read_text().splitlines() if line.strip()]


def test_drop_mode_drops_videos_with_cuts_instead_of_splitting(tmp_path, dataset):
    result = pipeline.curate(dataset, tmp_path / "curated", SMALL, MeasureSettings(cuts="drop"), progress=False)
    clips = _clips(result.report)
    assert not clips["cut.mp4"]["kept"] and "scene cut at frame(s) [24]" in clips["cut.mp4"]["reasons"]
    assert not (tmp_path / "curated/clips").exists() and result.kept == 1


def test_a_file_listed_twice_is_kept_once(tmp_path):
    root = tmp_path / "data"
    write(root / "moving.mp4", panning(32, 64, step=2, seed=3))
    manifest = write_manifest_lines(root / "videos.jsonl", [{"path": "moving.mp4", "caption": "first"},
                                                            {"path": "moving.mp4", "caption": "second"}])
    result = pipeline.curate(manifest, tmp_path / "curated", SMALL, MeasureSettings(cuts="off"), progress=False)
    clips = json.loads(result.report.read_text())["clips"]
    assert [c["kept"] for c in clips] == [True, False] and clips[1]["reasons"][0].startswith("duplicate of")
    assert [r.caption for r in read_manifest(result.manifest)] == ["first"]
