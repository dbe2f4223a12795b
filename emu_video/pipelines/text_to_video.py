"""The factorized pipeline: text -> first frame -> video (4 fps) -> interpolated video (16 fps).

With `direct=True` it is the paper's baseline instead: the video straight from text (the `direct` layout, no
first frame), then the same interpolation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from emu_video.diffusion.layouts import make_layout
from emu_video.pipelines.base import Pipeline, Settings, VideoOutput
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
        interpolation_steps: int | None = None,
        image_guidance: float | None = None,
        num_frames: int | None = None,
        interpolate: bool = True,
        direct: bool = False,
        return_first_frame: bool = False,
        on_first_frame: Callable[[np.ndarray], None] | None = None,
        **sampling,
    ) -> VideoOutput:
        """A video for `prompt`: first frame, video, interpolation (with `direct`: no first frame).
        `on_first_frame(image)` gets the decoded first frame (H, W, 3) uint8 as soon as it exists, before the
        video is made (e.g. to show it). `sampling`: see `Pipeline.prepare`."""
        c = self.components
        prompt, s = self.prepare(prompt, **sampling)
        interpolate = interpolate and c.has_layout("interpolation")
        steps = {"generator": s.generator, "num_inference_steps": s.steps, "sampler": s.sampler,
                 "callback": s.callback, "progress": s.progress, "cfg_truncation": s.cfg_truncation,
                 "cfg_truncation_keep": s.cfg_truncation_keep, "cache_interval": s.cache_interval}
        image = None
        if direct:
            video = self.direct(prompt, num_frames, s)
        else:
            image = self.text_to_image(prompt, guidance_scale=image_guidance,
                                       decode=return_first_frame or on_first_frame is not None, **steps)
            if on_first_frame is not None:
                on_first_frame(image.image)
            video = self.image_to_video(None, prompt, image_latents=image.latents, num_frames=num_frames,
                                        w_img=s.w_img, w_txt=s.w_txt, decode=not interpolate, **steps)
        if interpolate:
            steps["num_inference_steps"] = interpolation_steps
            video = self.interpolate(None, prompt, latents=video.latents, fps=video.fps, w_img=s.w_img,
                                     w_txt=s.w_txt, **steps)
        if video.frames is None:
            video.frames = self.decode(video.latents)
        video.first_frame = image.image if image is not None and return_first_frame else None
        return video

    def direct(self, prompt: str, num_frames: int | None, s: Settings) -> VideoOutput:
        """The base video straight from the text: the `direct` layout (no known frames)."""
        c = self.components
        layout = make_layout("direct")
        num_frames = int(self.default(num_frames, "num_frames"))
        down = c.vae.downscale
        nothing = torch.zeros(1, c.unet.config.latent_channels, 0, s.height // down, s.width // down)
        latents = self.sample_layout(layout, self.encode_prompt(prompt), nothing, num_frames, s,
                                     label="video (direct)")
        return VideoOutput(frames=None, fps=float(c.defaults["fps"]), latents=latents,
                           info={"layout": layout.name, "weights": c.weights_for(layout.name)})
