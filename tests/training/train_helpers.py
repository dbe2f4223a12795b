"""Small model folders and one-call training runs for the training tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import builders
import torch

# Settings that make any stage config train in seconds on a CPU.
FAST = [
    "data.num_workers=0", "log.progress=false", "log.tensorboard=false", "train.global_batch_size=0",
    "train.batch_size=2", "train.max_steps=2", "train.checkpoint_every=1", "train.ema_decay=0.9",
    "optim.warmup_steps=1", "data.resolution=16", "train.device=cpu",
]


def micro_unet_config():
    from emu_video.models import VideoUNetConfig

    return VideoUNetConfig(
        latent_channels=4, block_out_channels=(16, 32), layers_per_block=(1, 1), attention_levels=(False, True),
        num_attention_heads=None, attention_head_dim=8, transformer_layers_per_block=2, context_dims=(24, 40),
        norm_num_groups=4, temporal_attention_heads_dim=8, temporal_ff_mult=2,
    )


MICRO_UNET_OVERRIDES = ("{ block_out_channels = [16, 32], layers_per_block = [1, 1], attention_levels = [false, true], "
                        "attention_head_dim = 8, norm_num_groups = 4, temporal_attention_heads_dim = 8, "
                        "temporal_ff_mult = 2 }")


def write_micro_model_folder(root: Path, seed: int = 0) -> Path:
    """A model folder like the `tiny_model_dir` fixture's, with a ~0.5M-parameter U-Net (fast on one thread)."""
    from emu_video.diffusion import NoiseSchedule
    from emu_video.models import VideoUNet
    from emu_video.pipelines.components import ModelIndex, write_model_index

    torch.manual_seed(seed)
    unet = VideoUNet(micro_unet_config())
    with torch.no_grad():
        for _, p in unet.spatial_named_parameters():
            p.add_(torch.randn_like(p) * 0.02)
    unet.save_pretrained(root / "unet")
    builders.write_tiny_vae(root / "vae")
    builders.write_clip_text_encoder(root / "text_encoder", hidden=24)
    builders.write_tokenizer(root / "tokenizer")
    builders.write_bert_text_encoder(root / "text_encoder_2", hidden=40)
    write_model_index(root, ModelIndex(
        text_encoders=[{"path": "text_encoder", "tokenizer": "tokenizer", "max_length": 12},
                       {"path": "text_encoder_2", "max_length": 10}],
        layouts={"first_frame": {"schedule": NoiseSchedule.stage_256().to_dict()}},
        defaults={"steps": 2, "interpolation_steps": 2, "num_frames": 8, "height": 16, "width": 16},
    ))
    return root


def run_stage(stage: str, out: Path, *overrides: str):
    """Train a stage in this process; returns the trainer after its run."""
    from emu_video.training.config import load_config
    from emu_video.training.trainer import Trainer

    cfg = load_config(stage, [*FAST, f"train.output_dir={json.dumps(str(out))}", *overrides])
    trainer = Trainer(cfg)
    trainer.status = trainer.run()
    return trainer


def cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emu_video.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def metrics(out: Path) -> dict[int, dict]:
    from emu_video.training.feedback import read_metrics

    return read_metrics(out / "logs" / "metrics.jsonl")
