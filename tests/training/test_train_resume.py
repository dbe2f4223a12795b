"""A run killed with SIGKILL at an arbitrary point and restarted with the same command ends exactly where an
uninterrupted run ends: same loss at every step, same weights, EMA and optimizer state."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from train_helpers import FAST, metrics

from emu_video.training.checkpoint import read_tensors
from emu_video.training.config import load_config
from emu_video.training.trainer import Trainer


def _command(out, media_dir, model_dir):
    overrides = [*FAST, f"train.output_dir={json.dumps(str(out))}", f"model.init={json.dumps(str(model_dir))}",
                 f"data.manifest={json.dumps(str(media_dir / 'videos.jsonl'))}", "data.num_frames=4",
                 "train.max_steps=10", "train.checkpoint_every=3", "train.keep_checkpoints=2", "optim.warmup_steps=4",
                 "train.grad_accum=2", "train.max_file_mib=0.25"]
    return [sys.executable, "-m", "emu_video.cli.main", "train", "--config", "video_256", *overrides]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, media_dir, micro_model_dir):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = subprocess.Popen(_command(straight, media_dir, micro_model_dir), env=_env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(_command(killed, media_dir, micro_model_dir), env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None:
        latest = killed / "checkpoints" / "latest"
        if latest.exists() and latest.read_text().strip() >= "step-00000003" and max(metrics(killed), default=0) >= 4:
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert victim.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = max(metrics(killed))
    assert 4 <= killed_at < 10

    resumed = subprocess.run(_command(killed, media_dir, micro_model_dir), env=_env(), capture_output=True,
                             text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr
    _, err = reference.communicate(timeout=240)
    assert reference.returncode == 0, err[-3000:]

    a, b = metrics(straight), metrics(killed)
    assert sorted(a) == sorted(b) == list(range(1, 11))
    for step in a:
        assert a[step]["loss"] == b[step]["loss"], f"step {step}: {a[step]['loss']} != {b[step]['loss']}"
        assert a[step]["lr"] == b[step]["lr"]
    for stem in ("trainable", "ema", "optimizer"):
        x = read_tensors(straight / "checkpoints/step-00000010", stem)
        y = read_tensors(killed / "checkpoints/step-00000010", stem)
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), stem
    kept = sorted(p.name for p in (killed / "checkpoints").iterdir())
    assert kept == ["latest", "step-00000009", "step-00000010"]
    parts = sorted(p.name for p in (killed / "checkpoints/step-00000010").glob("optimizer-*.safetensors"))
    assert len(parts) >= 2  # files split at train.max_file_mib


class _Killed(BaseException):
    """Stands for SIGKILL: nothing of the run's own ending (final status, last checkpoint) happens."""


def _lines_of(text):
    return [json.loads(line) for line in text.splitlines()[:-1]]


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_status_follows_checkpoints_and_a_resume_logs_each_step_once(tmp_path, media_dir, micro_model_dir):
    out = tmp_path / "run"
    overrides = [*FAST, f"train.output_dir={json.dumps(str(out))}", f"model.init={json.dumps(str(micro_model_dir))}",
                 f"data.manifest={json.dumps(str(media_dir / 'videos.jsonl'))}", "data.num_frames=4",
                 "train.max_steps=7", "train.checkpoint_every=2", "log.rank_logs=true", "log.tensorboard=true"]
    victim = Trainer(load_config("video_256", overrides))
    real_step = victim.train_step

    def step_then_die():
        r = real_step()
        if victim.step == 6:  # after step 5 was logged and before step 6 is: 4 is the newest checkpoint
            with open(out / "logs" / "metrics.jsonl", "a") as fh:  # as a kill in the middle of a write leaves
                fh.write('{"step": 6, "lo')
            raise _Killed
        return r

    victim.train_step = step_then_die
    with pytest.raises(_Killed):
        victim.run()
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "running" and status["step"] == 4 and status["max_steps"] == 7
    assert status["last_checkpoint"] == str(out / "checkpoints" / "step-00000004")
    assert status["time"]
    logged = (out / "logs" / "metrics.jsonl").read_text()
    assert logged.endswith('{"step": 6, "lo') and [r["step"] for r in _lines_of(logged)] == [1, 2, 3, 4, 5]

    resumed = Trainer(load_config("video_256", overrides))
    assert resumed.step == 4
    assert resumed.run() == "finished"
    assert [r["step"] for r in _lines(out / "logs" / "metrics.jsonl")] == list(range(1, 8))
    ranks = _lines(out / "logs" / "rank-0.jsonl")
    assert [r["step"] for r in ranks if "indices" in r] == list(range(1, 8))
    assert [r["step"] for r in ranks if r.get("final")] == [7]
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 7
    events = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    board = events.EventAccumulator(str(out / "logs" / "tensorboard"))
    board.Reload()
    assert [e.step for e in board.Scalars("train/loss")] == list(range(1, 8))  # purged at the resumed step
    assert status["last_checkpoint"] == str(out / "checkpoints" / "step-00000007")
