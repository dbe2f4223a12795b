"""Step caching of the U-Net's deep features between adjacent sampler steps (the DeepCache idea).

Between two adjacent denoising steps the inputs change little, and the deep, low-resolution part of the
U-Net changes least. A `DeepFeatureCache` keeps the input of the last up block (the output of every deeper
level, upsampled to the first level's resolution) from a full forward. A "shallow" forward reuses it: it runs
only the input head, the first down block's ResNets and transformers (their outputs are the last up block's
skip connections), the last up block and the output head. Everything deeper is skipped.

A sampler loop asks for a full forward every `interval` steps and shallow ones in between (`refresh(i)`);
`interval=1` never reuses, so the outputs are exactly those of the U-Net without a cache. A shallow forward
whose batch or shape differs from the cached feature's (e.g. after CFG truncation drops guidance passes, or
another layout's windows) runs in full instead and refreshes the cache.
"""

from __future__ import annotations

import torch

__all__ = ["DeepFeatureCache"]


class DeepFeatureCache:
    """The cached deep feature and the schedule that decides, per step, whether it may be reused."""

    def __init__(self, interval: int = 1):
        interval = int(interval)
        if interval < 1:
            raise ValueError(f"the cache interval must be at least 1, got {interval}")
        self.interval = interval
        self.feature: torch.Tensor | None = None
        self.reuse = False  # set per step by `refresh`
        self.full_steps = 0
        self.shallow_steps = 0

    def refresh(self, step: int) -> None:
        """Before the network pass of sampler step `step` (0-based): reuse the feature unless the schedule
        says to compute it again."""
        self.reuse = self.interval > 1 and step % self.interval != 0

    def usable(self, frames: int, height: int, width: int) -> bool:
        """Whether a shallow pass may read the cached feature for a batch of `frames` frames (B*T) of that
        first-level size."""
        f = self.feature
        return self.reuse and f is not None and f.shape[0] == frames and tuple(f.shape[-2:]) == (height, width)

    def store(self, feature: torch.Tensor) -> None:
        self.feature = feature
        self.full_steps += 1

    def clear(self) -> None:
        self.feature = None
        self.reuse = False
