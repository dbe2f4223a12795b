"""Step 1 of the factorization: the first frame from text, with the U-Net's temporal layers off."""

from __future__ import annotations

from emu_video.diffusion.guidance import ClassifierFreeGuidance
from emu_video.pipelines.base import (
    ConditionedUNet,
    ImageOutput,
    Pipeline,
    check_weight,
    denoise,
    randn,
    tensor_to_frames,
)


class TextToImagePipeline(Pipeline):

    def __call__(
        self,
        prompt: str,
        guidance_scale: float | None = None,
        decode: bool = True,
        **sampling,
    ) -> ImageOutput:
        """The first frame for `prompt`. `sampling`: see `Pipeline.prepare`."""
        c = self.components
        prompt, s = self.prepare(prompt, **sampling)
        scale = check_weight(self.default(guidance_scale, "image_guidance"), "the first frame's guidance scale")
        text = self.encode_prompt(prompt)
        down = c.vae.downscale
        latents = randn((1, c.unet.config.latent_channels, s.height // down, s.width // down), s.generator, c.device,
                        c.dtype)
        model = ConditionedUNet(c, text, use_temporal=False)
        latents = denoise(ClassifierFreeGuidance(scale), model, c.image_schedule(), latents, s, "first frame")
        image = tensor_to_frames(c.vae.decode(latents.unsqueeze(2)))[0] if decode else None
        return ImageOutput(image=image, latents=latents)
