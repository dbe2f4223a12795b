"""The same entry point under torchrun: two CPU processes (gloo) see different data and end with
identical weights, with DDP and with FSDP2, and train as one process does with the same global batch."""

import json
import os
import subprocess
import sys

import pytest
import torch
from train_helpers import FAST, metrics, run_stage

from emu_video.models import VideoUNet
from emu_video.pipelines.components import ModelIndex


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_share_the_data_and_agree_on_the_weights(tmp_path, media_dir, micro_model_dir, strategy):
    out = tmp_path / strategy
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "emu_video.cli.main", "train", "--config", "video_256", *FAST,
           f"train.output_dir={json.dumps(str(out))}", f"model.init={json.dumps(str(micro_model_dir))}",
           f"data.manifest={json.dumps(str(media_dir / 'videos.jsonl'))}", "data.num_frames=4",
           "train.batch_size=1", "train.max_steps=3", "train.checkpoint_every=2", "log.rank_logs=true",
           f"parallel.strategy={strategy}", "parallel.backend=gloo"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]

    ranks = [_records(out / "logs" / f"rank-{r}.jsonl") for r in (0, 1)]
    steps = [[rec for rec in recs if "indices" in rec] for recs in ranks]
    seen = [[i for rec in recs for i in rec["indices"]] for recs in steps]
    assert [len(s) for s in seen] == [3, 3]
    assert not set(seen[0]) & set(seen[1])  # 6 clips, 3 steps of 1 clip per rank: one disjoint epoch
    assert sorted(seen[0] + seen[1]) == list(range(6))
    final = [[rec for rec in recs if rec.get("final")][-1] for recs in ranks]
    assert final[0]["weights_sha256"] == final[1]["weights_sha256"]
    assert sorted(metrics(out)) == [1, 2, 3]
    state = json.loads((out / "checkpoints/step-00000003/state.json").read_text())
    assert state["world_size"] == 2 and len(state["data"]) == 2
    model = out / "model"
    VideoUNet.from_pretrained(model / ModelIndex.load(model).unet)

    # One process with the same global batch (2 clips in one micro-batch, or 1 clip in each of 2
    # accumulation steps) draws the same noise for the same clips (per-sample randomness) and so follows the
    # same losses and reaches the same weights.
    two = metrics(out)
    for name, extra in (("one-batch", ["train.batch_size=2"]), ("accumulated", ["train.batch_size=1",
                                                                                "train.grad_accum=2"])):
        single = run_stage("video_256", tmp_path / name, f"model.init={json.dumps(str(micro_model_dir))}",
                           f"data.manifest={json.dumps(str(media_dir / 'videos.jsonl'))}", "data.num_frames=4",
                           "train.max_steps=3", "train.checkpoint_every=2", *extra)
        one = metrics(tmp_path / name)
        for step in (1, 2, 3):
            assert one[step]["loss"] == pytest.approx(two[step]["loss"], rel=1e-5, abs=1e-6), (name, step)
        ref = VideoUNet.from_pretrained(model / ModelIndex.load(model).unet).state_dict()
        got = VideoUNet.from_pretrained(tmp_path / name / "model" / ModelIndex.load(tmp_path / name / "model").unet
                                        ).state_dict()
        for key, value in ref.items():
            torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-5, msg=f"{name}: {key}")
        assert single.step == 3


def test_fsdp_shards_bf16_frozen_weights_under_bf16_precision(tmp_path, media_dir, micro_model_dir):
    """Frozen weights stay bf16 under FSDP (half the shard memory, gathered without a cast) while the trainable
    ones are fp32: two processes train and agree on the weights."""
    from emu_video.training.config import load_config
    from emu_video.training.trainer import resolve_precision

    cfg = load_config("video_256", ["data.manifest=d.jsonl", "model.init=m", "train.precision=bf16",
                                    "parallel.strategy=fsdp"])
    assert resolve_precision(cfg, torch.device("cpu"))[1] == torch.bfloat16
    out = tmp_path / "fsdp-bf16"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "emu_video.cli.main", "train", "--config", "video_256", *FAST,
           f"train.output_dir={json.dumps(str(out))}", f"model.init={json.dumps(str(micro_model_dir))}",
           f"data.manifest={json.dumps(str(media_dir / 'videos.jsonl'))}", "data.num_frames=4",
           "train.batch_size=1", "train.max_steps=2", "log.rank_logs=true", "train.precision=bf16",
           "parallel.strategy=fsdp", "parallel.backend=gloo"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "bf16 autocast, frozen weights bfloat16" in done.stdout + done.stderr
    final = [[rec for rec in _records(out / "logs" / f"rank-{r}.jsonl") if rec.get("final")][-1] for r in (0, 1)]
    assert final[0]["weights_sha256"] == final[1]["weights_sha256"]
    assert sorted(metrics(out)) == [1, 2]
