"""Frame interpolation (the model I): masked zero-interleaving of `input_frames` frames into a clip at
`factor` times the frame rate, with `pad` frames beyond each end (8 -> 37 frames by default). The known frames
are noise-augmented in training (t ~ U{0..noise_aug_max}) and at sampling (a fixed level, default t=100)."""

from __future__ import annotations

from dataclasses import dataclass

from emu_video.errors import UserError

from ..conditioning import interpolation_length, interpolation_positions, stitch_plan
from .base import Layout


@dataclass(frozen=True)
class InterpolationLayout(Layout):
    name = "interpolation"
    summary = "frame interpolation: every factor-th frame is given (8 frames at 4 fps -> 37 at 16 fps)"
    fallback = None  # F's weights cannot interpolate

    input_frames: int = 8
    factor: int = 4
    pad: int = 4
    noise_aug_max: int = 250

    @property
    def clip_frames(self) -> int:
        return interpolation_length(self.input_frames, self.factor, self.pad)

    def fixed_frames(self) -> int | None:
        return self.clip_frames

    def positions(self, num_frames: int) -> list[int]:
        self.check_frames(num_frames)
        return interpolation_positions(self.input_frames, self.factor, self.pad)

    def check_frames(self, num_frames: int) -> None:
        if num_frames != self.clip_frames:
            raise UserError(f"interpolation of {self.input_frames} frames (factor {self.factor}, pad {self.pad}) "
                            f"makes {self.clip_frames}-frame clips, not {num_frames}")

    def check_options(self) -> None:
        super().check_options()
        if self.input_frames < 2 or self.factor < 1 or self.pad < 0:
            raise UserError("interpolation layout: input_frames >= 2, factor >= 1, pad >= 0")

    def windows(self, num_inputs: int) -> list[tuple[int, int, int]]:
        """How a longer low-fps clip is interpolated window by window and stitched (see `stitch_plan`)."""
        if num_inputs < self.input_frames or num_inputs % self.input_frames:
            raise UserError(f"interpolation takes a multiple of {self.input_frames} frames "
                            f"({self.input_frames} -> {self.clip_frames}, ...); got {num_inputs}")
        return stitch_plan(num_inputs, self.input_frames, self.factor, self.pad)

    def output_positions(self, num_inputs: int) -> list[int]:
        """Where each input frame (and, last, the end) lands in the stitched output of `num_inputs` frames
        (padded with repeats of the last to a multiple of `input_frames`, as interpolating with a repeated
        tail does): input i -> the output frame it became, or the first frame after it that was kept."""
        padded = num_inputs + (-num_inputs % self.input_frames)
        positions, offset = [], 0
        for start, keep_from, keep_to in self.windows(padded):
            for j in range(start, start + self.input_frames):
                local = self.pad + self.factor * (j - start)
                positions.append(offset + min(max(local, keep_from), keep_to) - keep_from)
            offset += keep_to - keep_from
        return positions[:num_inputs] + [offset - self.factor * (padded - num_inputs)]
