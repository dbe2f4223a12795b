"""Extension: the first frames of the clip are the end of an earlier video; the rest continues it."""

from __future__ import annotations

from dataclasses import dataclass

from emu_video.errors import UserError

from .base import Layout


@dataclass(frozen=True)
class ExtensionLayout(Layout):
    name = "extension"
    summary = "continue a video: its last frames start the clip, with a new prompt"

    past_frames: int = 0  # known frames at the start of the clip; 0: half the clip

    def past(self, num_frames: int) -> int:
        return self.past_frames or num_frames // 2

    def positions(self, num_frames: int) -> list[int]:
        return list(range(self.past(num_frames)))

    def check_frames(self, num_frames: int) -> None:
        super().check_frames(num_frames)
        if not 1 <= self.past(num_frames) < num_frames:
            raise UserError(f"extension needs at least 1 past and 1 new frame: {self.past(num_frames)} past frames "
                            f"of a {num_frames}-frame clip")

    def check_options(self) -> None:
        super().check_options()
        if self.past_frames < 0:
            raise UserError(f"extension layout: past_frames must be >= 0 (0: half the clip), got {self.past_frames}")
