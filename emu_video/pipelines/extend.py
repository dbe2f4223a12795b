"""Extension: condition on the last frames of a video and a new "future" prompt; generate what comes next."""

from __future__ import annotations

import numpy as np

from emu_video.diffusion.layouts import make_layout
from emu_video.errors import UserError
from emu_video.pipelines.base import (
    Pipeline,
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
        window = int(c.defaults["num_frames"])
        num_past = int(num_past or window // 2)
        num_new = int(num_new or window - num_past)
        if num_past < 1 or num_new < 1:
            raise UserError(f"need at least 1 past and 1 new frame, got {num_past} and {num_new}")
        model_fps = float(c.defaults["fps"])
        frames = resample_frames(np.asarray(frames), float(fps or model_fps), model_fps)
        if len(frames) < num_past:
            raise UserError(
                f"the video has {len(frames)} frames at {model_fps:g} fps; extension conditions on the last {num_past}"
            )
        past = self.encode_frames(frames[-num_past:], s.height, s.width)
        layout = make_layout("extension", past_frames=num_past)
        latents = self.sample_layout(layout, self.encode_prompt(prompt), past, num_past + num_new, s,
                                     label="extension")
        new = self.decode(latents[:, :, num_past:])
        known = tensor_to_frames(frames_to_tensor(frames, s.height, s.width))
        return VideoOutput(frames=np.concatenate([known, new]), fps=model_fps, latents=latents,
                           info={"num_new": num_new, "layout": layout.name, "weights": c.weights_for(layout.name)})
