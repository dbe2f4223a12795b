"""Image-to-video (the model F): the first frame is known, the rest of the clip is generated."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Layout


@dataclass(frozen=True)
class FirstFrameLayout(Layout):
    name = "first_frame"
    summary = "image-to-video: the first frame is given"
    aliases = ("video",)
    fallback = None  # its weights are the U-Net's own

    def positions(self, num_frames: int) -> list[int]:
        return [0]
