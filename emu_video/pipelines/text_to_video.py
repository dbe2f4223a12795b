"""The factorized pipeline: text -> first frame -> video (4 fps) -> interpolated video (16 fps)."""

from __future__ import annotations

import torch

from emu_video.pipelines.base import (
    Pipeline,
    StepCallback,
    VideoOutput,
    check_prompt,
    make_generator,
    tensor_to_frames,
)
from emu_video.pipelines.components import EmuVideoComponents
from emu_video.pipelines.image_to_video import ImageToVideoPipeline
from emu_video.pipelines.interpolate import InterpolatePipeline
from emu_video.pipelines.text_to_image import TextToImagePipeline


class TextToVideoPipeline(Pipeline):
    def __init__(self, components: EmuVideoComponents):
        super().__init__(components)
        self.text_to_image = TextToImagePipeline(components)
        self.image_to_video = ImageToVideoPipeline(components)
        self.interpolate = InterpolatePipeline(components)

    def __call__(
        self,
        prompt: str,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        num_inference_steps: int | None = None,
        interpolation_steps: int | None = None,
        image_guidance: float | None = None,
        w_img: float | None = None,
        w_txt: float | None = None,
        num_frames: int | None = None,
        interpolate: bool = True,
        return_first_frame: bool = False,
        callback: StepCallback | None = None,
        progress: bool = True,
    ) -> VideoOutput:
        c = self.components
        prompt = check_prompt(prompt)
        generator = generator or make_generator(seed)
        image = self.text_to_image(
            prompt, generator=generator, num_inference_steps=num_inference_steps, guidance_scale=image_guidance,
            callback=callback, progress=progress, decode=return_first_frame,
        )
        video = self.image_to_video(
            None, prompt, image_latents=image.latents, generator=generator, num_frames=num_frames,
            num_inference_steps=num_inference_steps, w_img=w_img, w_txt=w_txt, callback=callback,
            progress=progress, decode=not (interpolate and c.interpolation_weights is not None),
        )
        if interpolate and c.interpolation_weights is not None:
            video = self.interpolate(
                None, prompt, latents=video.latents, fps=video.fps, generator=generator,
                num_inference_steps=interpolation_steps, w_img=w_img, w_txt=w_txt, callback=callback,
                progress=progress,
            )
        if video.frames is None:
            video.frames = tensor_to_frames(c.vae.decode(video.latents))
        video.first_frame = image.image if return_first_frame else None
        return video
