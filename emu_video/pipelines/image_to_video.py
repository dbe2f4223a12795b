"""Step 2: animate an image (generated or the user's) with a prompt: the first_frame layout, or the keyframes
layout when a last image is given too."""

from __future__ import annotations

import numpy as np
import torch

from emu_video.diffusion.layouts import make_layout
from emu_video.errors import UserError
from emu_video.pipelines.base import Pipeline, VideoOutput


class ImageToVideoPipeline(Pipeline):

    def encode_image(self, image: np.ndarray, height: int, width: int) -> torch.Tensor:
        """An RGB image (H, W, 3) -> its latent (1, C, h, w)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise UserError(f"the image must be RGB (H, W, 3), got shape {tuple(image.shape)}")
        return self.encode_frames(image, height, width)[:, :, 0]

    def __call__(
        self,
        image: np.ndarray | None,
        prompt: str,
        image_latents: torch.Tensor | None = None,
        last_image: np.ndarray | None = None,
        num_frames: int | None = None,
        decode: bool = True,
        **sampling,
    ) -> VideoOutput:
        """A video whose first frame is `image` (or `image_latents`); with `last_image`, also its last frame.
        `sampling`: see `Pipeline.prepare`."""
        c = self.components
        prompt, s = self.prepare(prompt, **sampling)
        num_frames = int(self.default(num_frames, "num_frames"))
        if num_frames < 2:
            raise UserError(f"num_frames must be at least 2, got {num_frames}")
        if image_latents is None:
            if image is None:
                raise UserError("give an image or image latents to animate")
            image_latents = self.encode_image(image, s.height, s.width)
        known = image_latents.unsqueeze(2)
        layout = make_layout("first_frame")
        if last_image is not None:
            layout = make_layout("keyframes")
            known = torch.cat([known.to(c.device, c.dtype), self.encode_image(last_image, s.height, s.width)[:, :, None]],
                              dim=2)
        text = self.encode_prompt(prompt)
        latents = self.sample_layout(layout, text, known, num_frames, s, label="video")
        return VideoOutput(frames=self.decode(latents) if decode else None, fps=float(c.defaults["fps"]),
                           latents=latents, info={"layout": layout.name, "weights": c.weights_for(layout.name)})
