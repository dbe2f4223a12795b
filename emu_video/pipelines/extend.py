"""Extension: condition on the last frames of a video and a new "future" prompt; generate what comes next."""

from __future__ import annotations

import numpy as np
import torch

from emu_video.diffusion.conditioning import extension_condition
from emu_video.errors import UserError
from emu_video.pipelines.base import (
    GuidedDenoiser,
    Pipeline,
    StepCallback,
    VideoOutput,
    check_prompt,
    denoise,
    frames_to_tensor,
    make_generator,
    randn,
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
        seed: int | None = None,
        generator: torch.Generator | None = None,
        num_inference_steps: int | None = None,
        w_img: float | None = None,
        w_txt: float | None = None,
        height: int | None = None,
        width: int | None = None,
        callback: StepCallback | None = None,
        progress: bool = True,
    ) -> VideoOutput:
        """Returns the input video (at the model's frame rate) followed by `num_new` generated frames."""
        c = self.components
        d = c.defaults
        prompt = check_prompt(prompt)
        window = int(d["num_frames"])
        num_past = int(num_past or window // 2)
        num_new = int(num_new or window - num_past)
        if num_past < 1 or num_new < 1:
            raise UserError(f"need at least 1 past and 1 new frame, got {num_past} and {num_new}")
        model_fps = float(d["fps"])
        frames = resample_frames(np.asarray(frames), float(fps or model_fps), model_fps)
        if len(frames) < num_past:
            raise UserError(
                f"the video has {len(frames)} frames at {model_fps:g} fps; extension conditions on the last {num_past}"
            )
        steps = self.default(num_inference_steps, "steps")
        w_img = self.default(w_img, "w_img")
        w_txt = self.default(w_txt, "w_txt")
        generator = generator or make_generator(seed)
        height, width = self.default(height, "height"), self.default(width, "width")
        past = frames_to_tensor(frames[-num_past:], height, width).to(c.device, c.dtype)
        past_latents = c.vae.encode(past)
        c.use_temporal("video")
        text = c.encode_prompts([prompt])
        cond, mask = extension_condition(past_latents, num_past + num_new)
        x = randn(cond.shape, generator, c.device, c.dtype)
        latents = denoise(GuidedDenoiser(c, text, cond, mask, w_img, w_txt), c.schedule("video"), x, steps,
                          callback, progress)
        new = tensor_to_frames(c.vae.decode(latents[:, :, num_past:]))
        known = tensor_to_frames(frames_to_tensor(frames, height, width))
        return VideoOutput(
            frames=np.concatenate([known, new]), fps=model_fps, latents=latents, info={"num_new": num_new}
        )
