"""Step 2: animate an image (generated or the user's) with a prompt; first-frame mask conditioning."""

from __future__ import annotations

import numpy as np
import torch

from emu_video.diffusion.conditioning import first_frame_condition
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


class ImageToVideoPipeline(Pipeline):

    def encode_image(self, image: np.ndarray, height: int, width: int) -> torch.Tensor:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise UserError(f"the image must be RGB (H, W, 3), got shape {tuple(image.shape)}")
        pixels = frames_to_tensor(image, height, width).to(self.components.device, self.components.dtype)
        return self.components.vae.encode(pixels)[:, :, 0]

    def __call__(
        self,
        image: np.ndarray | None,
        prompt: str,
        image_latents: torch.Tensor | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        num_frames: int | None = None,
        num_inference_steps: int | None = None,
        w_img: float | None = None,
        w_txt: float | None = None,
        height: int | None = None,
        width: int | None = None,
        callback: StepCallback | None = None,
        progress: bool = True,
        decode: bool = True,
    ) -> VideoOutput:
        c = self.components
        d = c.defaults
        prompt = check_prompt(prompt)
        num_frames = int(self.default(num_frames, "num_frames"))
        if num_frames < 2:
            raise UserError(f"num_frames must be at least 2, got {num_frames}")
        steps = self.default(num_inference_steps, "steps")
        w_img = self.default(w_img, "w_img")
        w_txt = self.default(w_txt, "w_txt")
        height, width = self.default(height, "height"), self.default(width, "width")
        generator = generator or make_generator(seed)
        if image_latents is None:
            if image is None:
                raise UserError("give an image or image latents to animate")
            image_latents = self.encode_image(image, height, width)
        c.use_temporal("video")
        text = c.encode_prompts([prompt])
        cond, mask = first_frame_condition(image_latents.to(c.device, c.dtype), num_frames)
        b, ch, _, h, w = cond.shape
        latents = randn((b, ch, num_frames, h, w), generator, c.device, c.dtype)
        denoiser = GuidedDenoiser(c, text, cond, mask, w_img, w_txt)
        latents = denoise(denoiser, c.schedule("video"), latents, steps, callback, progress)
        frames = tensor_to_frames(c.vae.decode(latents)) if decode else None
        return VideoOutput(frames=frames, fps=float(d["fps"]), latents=latents)
