"""`log.profile_from` / `log.profile_steps`: torch.profiler over chosen training steps, written as a table
(phases of a step first) and a Chrome trace; training goes on unchanged."""

from __future__ import annotations

import json

import pytest
from train_helpers import metrics, run_stage

from emu_video.errors import UserError


def _q(path) -> str:
    return json.dumps(str(path))


def test_profiled_steps_write_a_table_and_a_trace(tmp_path, media_dir, micro_model_dir):
    out = tmp_path / "run"
    trainer = run_stage("video_256", out, f"data.manifest={_q(media_dir / 'videos.jsonl')}",
                        f"model.init={_q(micro_model_dir)}", "data.num_frames=4", "train.max_steps=3",
                        "log.profile_from=2", "log.profile_steps=1")
    assert trainer.status == "finished" and sorted(metrics(out)) == [1, 2, 3]
    table = (out / "logs/profile-rank0.txt").read_text()
    assert table.startswith("profiled steps: 1 (times in ms per step)")
    phases = [line.split()[0] for line in table.splitlines() if line.startswith("train/")]
    for name in ("train/data", "train/encode", "train/forward_backward", "train/unet_forward", "train/optimizer",
                 "train/ema", "train/clip", "train/backward"):
        assert name in phases, (name, phases)
    ms = {line.split()[0]: float(line.split()[1]) for line in table.splitlines() if line.startswith("train/")}
    assert 0 < ms["train/unet_forward"] <= ms["train/forward_backward"]  # a phase inside the other
    trace = json.loads((out / "logs/profile-rank0.trace.json").read_text())
    assert any(e.get("name") == "train/forward_backward" for e in trace["traceEvents"])


def test_a_run_ending_inside_the_profiled_steps_still_writes_them(tmp_path, media_dir, micro_model_dir):
    out = tmp_path / "run"
    run_stage("video_256", out, f"data.manifest={_q(media_dir / 'videos.jsonl')}", f"model.init={_q(micro_model_dir)}",
              "data.num_frames=4", "train.max_steps=2", "log.profile_from=2", "log.profile_steps=5")
    assert (out / "logs/profile-rank0.txt").read_text().startswith("profiled steps: 1 ")


@pytest.mark.parametrize("setting", ["log.profile_from=-1", "log.profile_steps=0"])
def test_bad_profile_settings_are_named(tmp_path, setting):
    from emu_video.training.config import load_config

    with pytest.raises(UserError, match=setting.split("=")[0]):
        load_config("video_256", [f"train.output_dir={_q(tmp_path)}", setting])
