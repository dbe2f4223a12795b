"""What a stage trains: its module, which parameters learn, its loss, and the model folder it writes.

The subclasses are in task_diffusion.py and task_autoencoder.py, chosen per stage kind by
`task_registry.build_task`; the trainer is the same for all.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from emu_video.training.config import TrainingConfig
from emu_video.training.train_state import SampleRandom

Drawn = dict[str, "torch.Tensor | list[torch.Tensor]"]


class Task:
    """Base class. `core` is the module wrapped by DDP/FSDP; `net` is the wrapped one used in `loss`.

    A step's loss comes in two parts: `draw` does everything that reads the batch or the random streams
    (encoders, noise, timesteps, dropout flags, crops) and returns tensors on the device; `loss_from` is
    the network and the loss on those tensors alone, with no host synchronisation, so that a recorded CUDA
    graph can replay it on new drawn tensors.
    """

    core: nn.Module
    net: nn.Module
    # autocast's cache of bf16 weight copies; a recorded CUDA graph must not keep copies made while recording
    autocast_cache = True

    def __init__(self, cfg: TrainingConfig, device: torch.device, autocast_dtype: torch.dtype | None):
        self.cfg, self.device, self.autocast_dtype = cfg, device, autocast_dtype

    def autocast(self):
        enabled = self.autocast_dtype is not None
        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=enabled,
                              cache_enabled=self.autocast_cache)

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.core.named_parameters() if p.requires_grad]

    def shard_units(self) -> list[nn.Module]:
        return []

    def cast_frozen(self, dtype: torch.dtype) -> None:
        """Store the frozen weights in `dtype` (bf16 halves their memory; trainable ones stay float32)."""
        if dtype == torch.float32:
            return
        with torch.no_grad():
            for p in self.core.parameters():
                if not p.requires_grad:
                    p.data = p.data.to(dtype)

    def to_channels_last(self) -> None:
        """Run the network (and the frozen encoders) on channels-last frames; a no-op where unsupported."""

    def draw(self, batch: dict, rng: SampleRandom) -> Drawn:
        raise NotImplementedError

    def loss_from(self, drawn: Drawn) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, batch: dict, rng: SampleRandom) -> torch.Tensor:
        return self.loss_from(self.draw(batch, rng))

    def export(self, model_dir: Path, weights: dict[str, torch.Tensor]) -> None:
        """Write the model folder with `weights` (full tensors of the trainable parameters). Rank 0 only."""
        raise NotImplementedError

    def save_adapter(self, folder: Path, weights: dict[str, torch.Tensor]) -> Path | None:
        """With LoRA: write the adapter (`weights`, its parameters by name) to `folder`; else nothing (None)."""
        return None

    def sample(self, model_dir: Path, out_stem: Path, prompts: list[str], steps: int, seed: int) -> list[Path]:
        return []

    def randn(self, shape, rng: SampleRandom) -> torch.Tensor:
        """Noise of the micro-batch's samples (see `SampleRandom`), on the training device."""
        return rng.randn(tuple(shape)).to(self.device)
