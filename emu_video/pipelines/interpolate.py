"""Frame interpolation (model I): masked zero-interleaving, 8 frames at 4 fps -> 37 frames at 16 fps.

Longer inputs are cut into 8-frame windows and stitched as the paper does: the last 5 frames of a window
and the first 4 of the next are dropped (16 frames -> 32 + 33 = 65 frames, 4.06 s at 16 fps). The
conditioning frames are noise-augmented (default t = 100) like the model's training inputs.
"""

from __future__ import annotations

import numpy as np
import torch

from emu_video.diffusion import add_noise
from emu_video.diffusion.conditioning import interpolation_condition, stitch_plan
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

WINDOW = 8  # input frames per interpolation window
FACTOR = 4  # frame-rate multiplier: 3 new frames between each pair
PAD = 4  # extra frames beyond each end of a window


class InterpolatePipeline(Pipeline):

    @staticmethod
    def check_length(num_frames: int) -> None:
        if num_frames < WINDOW or num_frames % WINDOW:
            raise UserError(
                f"interpolation takes a multiple of {WINDOW} frames (8 -> 37, 16 -> 65, ...); got {num_frames}"
            )

    def __call__(
        self,
        frames: np.ndarray | None,
        prompt: str = "",
        latents: torch.Tensor | None = None,
        fps: float = 4.0,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        num_inference_steps: int | None = None,
        w_img: float | None = None,
        w_txt: float | None = None,
        noise_t: int | None = None,
        height: int | None = None,
        width: int | None = None,
        callback: StepCallback | None = None,
        progress: bool = True,
        decode: bool = True,
    ) -> VideoOutput:
        c = self.components
        prompt = check_prompt(prompt)
        steps = self.default(num_inference_steps, "interpolation_steps")
        w_img = self.default(w_img, "w_img")
        w_txt = self.default(w_txt, "w_txt")
        noise_t = int(self.default(noise_t, "interpolation_noise_t"))
        schedule = c.schedule("interpolation")
        if not 0 <= noise_t < schedule.num_train_timesteps:
            raise UserError(f"noise_t must be in 0..{schedule.num_train_timesteps - 1}, got {noise_t}")
        generator = generator or make_generator(seed)
        if latents is None:
            if frames is None:
                raise UserError("give frames or latents to interpolate")
            self.check_length(len(frames))
            pixels = frames_to_tensor(frames, self.default(height, "height"), self.default(width, "width"))
            latents = c.vae.encode(pixels.to(c.device, c.dtype))
        self.check_length(latents.shape[2])
        c.use_temporal("interpolation")
        try:
            text = c.encode_prompts([prompt])
            pieces = []
            plan = stitch_plan(latents.shape[2], WINDOW, FACTOR, PAD)
            for w, (start, keep_from, keep_to) in enumerate(plan):
                known = latents[:, :, start : start + WINDOW].to(c.device, c.dtype)
                noise = randn(known.shape, generator, c.device, c.dtype)
                t = torch.full((known.shape[0],), noise_t, dtype=torch.long, device=c.device)
                known = add_noise(known, noise, t, schedule.alphas_cumprod.to(c.device)).to(c.dtype)
                cond, mask = interpolation_condition(known, FACTOR, PAD)
                x = randn(cond.shape, generator, c.device, c.dtype)
                denoiser = GuidedDenoiser(c, text, cond, mask, w_img, w_txt)
                out = denoise(denoiser, schedule, x, steps, callback, progress)
                pieces.append(out[:, :, keep_from:keep_to])
        finally:
            c.use_temporal("video")
        result = torch.cat(pieces, dim=2)
        frames_out = tensor_to_frames(c.vae.decode(result)) if decode else None
        return VideoOutput(frames=frames_out, fps=float(fps) * FACTOR, latents=result, info={"windows": len(plan)})
