"""Step 1 of the factorization: the first frame from text, with the U-Net's temporal layers off."""

from __future__ import annotations

import torch

from emu_video.pipelines.base import (
    GuidedDenoiser,
    ImageOutput,
    StepCallback,
    check_prompt,
    denoise,
    make_generator,
    randn,
    tensor_to_frames,
)
from emu_video.pipelines.components import EmuVideoComponents


class TextToImagePipeline:
    def __init__(self, components: EmuVideoComponents):
        self.components = components

    @classmethod
    def from_pretrained(cls, model=None, device="cpu", dtype=None) -> "TextToImagePipeline":
        return cls(EmuVideoComponents.from_pretrained(model, device, dtype))

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
        d = c.defaults
        prompt = check_prompt(prompt)
        steps = d["steps"] if num_inference_steps is None else num_inference_steps
        scale = d["image_guidance"] if guidance_scale is None else guidance_scale
        height, width = height or d["height"], width or d["width"]
        generator = generator or make_generator(seed)
        # encode -> prepare latents -> denoise -> decode
        text = c.encode_prompts([prompt])
        down = c.vae.downscale
        latents = randn((1, c.unet.config.latent_channels, height // down, width // down), generator, c.device, c.dtype)
        denoiser = GuidedDenoiser(c, text, w_txt=scale, use_temporal=False)
        latents = denoise(denoiser, c.schedule("image"), latents, steps, callback, progress)
        image = tensor_to_frames(c.vae.decode(latents.unsqueeze(2)))[0] if decode else None
        return ImageOutput(image=image, latents=latents)
