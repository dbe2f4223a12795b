"""A run killed with SIGKILL at an arbitrary point and restarted with the same command ends exactly where an
uninterrupted run ends: same loss at every step, same weights, EMA and optimizer state."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
from train_helpers import FAST, metrics

from emu_video.training.checkpoint import read_tensors


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
