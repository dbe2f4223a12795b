"""Broken files are skipped and counted; NaN/Inf steps are skipped and logged; a persistent NaN stops the
run and keeps the last good checkpoint; a time budget checkpoints, exports and exits cleanly."""

import json

import media_helpers
import pytest
import torch
from train_helpers import FAST, metrics, run_stage

from emu_video.training.config import load_config
from emu_video.training.trainer import Trainer, TrainingDiverged


def _videos(media_dir):
    return f"data.manifest={json.dumps(str(media_dir / 'videos.jsonl'))}"


def _init(model_dir):
    return f"model.init={json.dumps(str(model_dir))}"


def test_corrupt_missing_and_short_files_are_skipped_and_counted(tmp_path, media_dir, micro_model_dir):
    rows = [json.loads(line) for line in (media_dir / "videos.jsonl").read_text().splitlines()]
    for row in rows:
        row["path"] = str(media_dir / row["path"])
    rows.insert(1, {"path": str(media_helpers.write_corrupt_video(tmp_path / "bad.mp4")), "caption": "bad"})
    rows.insert(3, {"path": str(tmp_path / "gone.mp4"), "caption": "gone"})
    short = media_helpers.write_truncated_video(media_dir / "videos/000000.mp4", tmp_path / "cut.mp4")
    rows.insert(4, {"path": str(short), "caption": "cut"})
    manifest = media_helpers.write_manifest_lines(tmp_path / "m.jsonl", rows)
    trainer = run_stage("video_256", tmp_path / "run", f"data.manifest={json.dumps(str(manifest))}",
                        _init(micro_model_dir), "data.num_frames=4", "data.shuffle=false", "train.max_steps=3")
    assert trainer.status == "finished"
    assert metrics(tmp_path / "run")[3]["skipped"] == 3
    assert trainer.stream.used == 6  # every batch is full: the next files of the epoch, not re-draws
    state = json.loads((tmp_path / "run/checkpoints/step-00000003/state.json").read_text())
    assert sum(state["data"][0]["skipped"].values()) == 3 and state["data"][0]["skipped"]["missing"] == 1
    log = (tmp_path / "run/logs/train.log").read_text()
    assert "skipped missing sample" in log and "gone.mp4" in log


def _nan_after(trainer, bad_steps):
    real = trainer.task.loss

    def loss(batch, generator):
        value = real(batch, generator)
        return value * float("nan") if trainer.step in bad_steps else value

    trainer.task.loss = loss


def test_nan_steps_are_skipped_then_a_persistent_nan_stops(tmp_path, media_dir, micro_model_dir):
    out = tmp_path / "run"
    cfg = load_config("video_256", [*FAST, f"train.output_dir={json.dumps(str(out))}", _videos(media_dir),
                                    _init(micro_model_dir), "data.num_frames=4", "train.max_steps=8",
                                    "train.max_nonfinite_steps=3"])
    trainer = Trainer(cfg)
    _nan_after(trainer, bad_steps={1} | set(range(3, 100)))
    before = {n: p.detach().clone() for n, p in trainer.named}
    with pytest.raises(TrainingDiverged, match="NaN/Inf for 3 steps in a row"):
        trainer.run()
    m = metrics(out)
    assert [m[s]["nonfinite"] for s in range(1, 7)] == [False, True, False, True, True, True]
    assert trainer.nonfinite_total == 4 and m[2]["nonfinite_steps"] == 1 and m[6]["nonfinite_steps"] == 4
    assert (out / "checkpoints/latest").read_text().strip() == "step-00000003"  # the last good step
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and "step-00000003" in status["message"]
    assert any(not torch.equal(before[n], p) for n, p in trainer.named)  # the good steps did update


def test_time_budget_checkpoints_exports_and_resumes(tmp_path, media_dir, micro_model_dir):
    args = ("video_256", tmp_path / "run", _videos(media_dir), _init(micro_model_dir), "data.num_frames=4",
            "train.max_steps=3", "train.checkpoint_every=100")
    first = run_stage(*args, "train.max_minutes=0.001")
    assert first.status == "paused" and first.step == 1
    assert json.loads((tmp_path / "run/status.json").read_text())["state"] == "paused"
    assert (tmp_path / "run/checkpoints/step-00000001").is_dir() and (tmp_path / "run/model/model_index.json").exists()
    second = run_stage(*args)
    assert second.status == "finished" and second.step == 3
    assert sorted(metrics(tmp_path / "run")) == [1, 2, 3]
