"""Training a small model for ~100 steps lowers its loss on a fixed batch (fixed noise and timesteps)."""

import json

import media_helpers
import torch
from train_helpers import FAST

from emu_video.training.config import load_config
from emu_video.training.train_state import SampleRandom
from emu_video.training.trainer import Trainer


def _fixed_batch_loss(trainer, batch) -> float:
    with torch.no_grad():
        return sum(float(trainer.task.loss(batch, SampleRandom(1234, k, batch["index"]))) for k in range(16)) / 16


def test_loss_on_a_fixed_batch_goes_down(tmp_path, media_dir, micro_model_dir):
    rows = [json.loads(line) for line in (media_dir / "videos.jsonl").read_text().splitlines()][:2]
    for row in rows:
        row["path"] = str(media_dir / row["path"])
    manifest = media_helpers.write_manifest_lines(tmp_path / "two.jsonl", rows)
    cfg = load_config("video_256", [
        *FAST, f"train.output_dir={json.dumps(str(tmp_path / 'run'))}", f"data.manifest={json.dumps(str(manifest))}",
        f"model.init={json.dumps(str(micro_model_dir))}", "data.num_frames=4", "data.clip_start=first",
        "train.max_steps=100", "train.checkpoint_every=100", "optim.lr=2e-3", "train.ema_decay=0",
        "dropout.p_text=0", "dropout.p_image=0", "dropout.p_both=0", "log.tensorboard=true", "log.progress=true",
    ])
    trainer = Trainer(cfg)
    batch = trainer.stream.next_batch()  # both clips
    trainer.stream = type(trainer.stream)(trainer.dataset, 2, seed=0, shuffle=False)
    before = _fixed_batch_loss(trainer, batch)
    assert trainer.run() == "finished"
    after = _fixed_batch_loss(trainer, batch)
    assert after < 0.8 * before, (before, after)
    assert list((tmp_path / "run/logs/tensorboard").glob("events.out.tfevents.*"))
