"""Direct text-to-video, the paper's baseline: the same U-Net and temporal layers, no image condition.

The conditioning channels stay zero (mask included), so the model sees only the text; sampling uses text-only
classifier-free guidance. Train it with a `direct` stage; a model folder without `direct` weights samples it
with the image-to-video model F, which learned the image-free case through condition dropout.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Layout


@dataclass(frozen=True)
class DirectLayout(Layout):
    name = "direct"
    summary = "text-to-video without an image condition (the paper's 'direct' baseline)"
    has_image = False

    def positions(self, num_frames: int) -> list[int]:
        return []
