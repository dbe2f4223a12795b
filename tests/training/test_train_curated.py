"""The curation path end to end: `emu-video curate` selects clips from a video manifest, and the `video_hq`
stage trains on the curated manifest it writes."""

import json

import pytest
from train_helpers import metrics, run_stage

pytest.importorskip("scenedetect")
pytest.importorskip("imagehash")

from emu_video.cli.main import main  # noqa: E402
from emu_video.data.manifest import read_manifest  # noqa: E402


def test_video_hq_trains_one_step_on_a_curated_manifest(tmp_path, media_dir, micro_model_dir, capsys):
    curated = tmp_path / "curated"
    assert main(["curate", str(media_dir / "videos.jsonl"), "--out", str(curated), "--workers", "0",
                 "--min-side", "32", "--min-motion", "0.2", "--no-progress"]) == 0
    assert "kept " in capsys.readouterr().out
    kept = read_manifest(curated / "manifest.jsonl")
    report = json.loads((curated / "report.json").read_text())
    assert len(kept) == report["counts"]["kept"] >= 1
    trainer = run_stage("video_hq", tmp_path / "hq", f"data.manifest={json.dumps(str(curated / 'manifest.jsonl'))}",
                        f"model.init={json.dumps(str(micro_model_dir))}", "train.batch_size=1", "train.max_steps=1")
    assert trainer.status == "finished" and trainer.step == 1
    assert list(metrics(tmp_path / "hq")) == [1] and (tmp_path / "hq/model/model_index.json").exists()
