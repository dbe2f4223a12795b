"""Keyframes: the first and the last frame are given, the frames between are generated."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Layout


@dataclass(frozen=True)
class KeyframesLayout(Layout):
    name = "keyframes"
    summary = "image-to-video between two images: the first and last frames are given"

    def positions(self, num_frames: int) -> list[int]:
        return [0, num_frames - 1]
