"""Extension: condition on the last frames of a video and a new "future" prompt; generate what comes next.

A model folder with `extension` weights samples with them (and its default number of past frames is the one
they were trained with); a folder without samples with the image-to-video model F's weights, which never
saw more than one known frame (the CLI prints a note).
"""

from __future__ import annotations

import numpy as np
import torch

from emu_video.diffusion.layouts import make_layout
from emu_video.errors import UserError
from emu_video.pipelines.base import (
    Pipeline,
    Settings,
    VideoOutput,
    frames_to_tensor,
    tensor_to_frames,
)


def resample_frames(frames: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Nearest-frame resampling of (T, H, W, 3) from fps_in to fps_out (same duration)."""
    if abs(fps_in - fps_out) < 1e-6:
        return frames
    n_out = max(1, int(np.floor((len(frames) - 1) * fps_out / fps_in + 1e-6)) + 1)
    idx = np.clip(np.round(np.arange(n_out) * fps_in / fps_out).astype(int), 0, len(frames) - 1)
    return frames[idx]


class ExtendPipeline(Pipeline):

    def window(self) -> int:
        return int(self.components.defaults["num_frames"])

    def default_past(self) -> int:
        """Past frames when none are asked for: those the folder's extension weights were trained with, else
        half the model's clip."""
        trained = int(self.components.layout_options("extension").get("past_frames", 0))
        return trained or self.window() // 2

    def frame_counts(self, num_past: int | None, num_new: int | None) -> tuple[int, int]:
        """(past, new) frames of one extension, defaults filled in and checked."""
        num_past = int(num_past or self.default_past())
        num_new = int(num_new or self.window() - num_past)
        if num_past < 1 or num_new < 1:
            raise UserError(f"need at least 1 past and 1 new frame, got {num_past} and {num_new}")
        return num_past, num_new

    def extend_latents(self, past: torch.Tensor, text: list[torch.Tensor], num_new: int, s: Settings,
                       label: str = "extension") -> torch.Tensor:
        """The latents (1, C, num_new, h, w) that follow `past` (1, C, K, h, w) as `text` says."""
        num_past = past.shape[2]
        layout = make_layout("extension", past_frames=num_past)
        latents = self.sample_layout(layout, text, past, num_past + num_new, s, label=label)
        return latents[:, :, num_past:]

    def __call__(
        self,
        frames: np.ndarray,
        prompt: str,
        fps: float | None = None,
        num_past: int | None = None,
        num_new: int | None = None,
        **sampling,
    ) -> VideoOutput:
        """The input video (at the model's frame rate) followed by `num_new` generated frames.
        `sampling`: see `Pipeline.prepare`."""
        c = self.components
        prompt, s = self.prepare(prompt, **sampling)
        num_past, num_new = self.frame_counts(num_past, num_new)
        model_fps = float(c.defaults["fps"])
        frames = resample_frames(np.asarray(frames), float(fps or model_fps), model_fps)
        if len(frames) < num_past:
            raise UserError(
                f"the video has {len(frames)} frames at {model_fps:g} fps; extension conditions on the last {num_past}"
            )
        past = self.encode_frames(frames[-num_past:], s.height, s.width)
        new_latents = self.extend_latents(past, self.encode_prompt(prompt), num_new, s)
        new = self.decode(new_latents)
        known = tensor_to_frames(frames_to_tensor(frames, s.height, s.width))
        return VideoOutput(frames=np.concatenate([known, new]), fps=model_fps,
                           latents=torch.cat([past, new_latents], dim=2),
                           info={"num_new": num_new, "layout": "extension", "weights": c.weights_for("extension")})
