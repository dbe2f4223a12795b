"""Step 1 of the factorization: the first frame from text, with the U-Net's temporal layers off."""

from __future__ import annotations

import torch

from emu_video.pipelines.base import (
    GuidedDenoiser,
    ImageOutput,
    Pipeline,
    StepCallback,
    check_prompt,
    denoise,
    make_generator,
    randn,
    tensor_to_frames,
)


class TextToImagePipeline(Pipeline):

    def __call__(
        self,
        prompt: str,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        height: int | None = None,
        width: int | None = None,
        callback: StepCallback | None = None,
        progress: bool = True,
        decode: bool = True,
    ) -> ImageOutput:
        c = self.components
        prompt = check_prompt(prompt)
        steps = self.default(num_inference_steps, "steps")
        scale = self.default(guidance_scale, "image_guidance")
        height, width = self.default(height, "height"), self.default(width, "width")
        generator = generator or make_generator(seed)
        # encode -> prepare latents -> denoise -> decode
        text = c.encode_prompts([prompt])
        down = c.vae.downscale
        latents = randn((1, c.unet.config.latent_channels, height // down, width // down), generator, c.device, c.dtype)
        denoiser = GuidedDenoiser(c, text, w_txt=scale, use_temporal=False)
        latents = denoise(denoiser, c.schedule("image"), latents, steps, callback, progress)
        image = tensor_to_frames(c.vae.decode(latents.unsqueeze(2)))[0] if decode else None
        return ImageOutput(image=image, latents=latents)
