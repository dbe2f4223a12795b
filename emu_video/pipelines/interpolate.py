"""Frame interpolation (model I): masked zero-interleaving, 8 frames at 4 fps -> 37 frames at 16 fps.

Longer inputs are cut into 8-frame windows and stitched as the paper does: the last 5 frames of a window
and the first 4 of the next are dropped (16 frames -> 32 + 33 = 65 frames, 4.06 s at 16 fps). The
conditioning frames are noise-augmented (default t = 100) like the model's training inputs.
"""

from __future__ import annotations

import numpy as np
import torch

from emu_video.diffusion.layouts import InterpolationLayout, make_layout
from emu_video.errors import UserError
from emu_video.pipelines.base import Pipeline, VideoOutput


class InterpolatePipeline(Pipeline):
    steps_key = "interpolation_steps"

    def layout(self) -> InterpolationLayout:
        """The interpolation layout with the options the folder's weights were trained with."""
        return make_layout("interpolation", **self.components.layout_options("interpolation"))

    def check_length(self, num_frames: int) -> None:
        self.layout().windows(num_frames)

    def __call__(
        self,
        frames: np.ndarray | None,
        prompt: str = "",
        latents: torch.Tensor | None = None,
        fps: float = 4.0,
        noise_t: int | None = None,
        decode: bool = True,
        repeat_tail: bool = False,
        **sampling,
    ) -> VideoOutput:
        """`frames` (or `latents`), 8k of them, at 4x their frame rate. With `repeat_tail`, any number of at
        least 8 (the last frame repeated to the next multiple of 8, and what those repeats make cut off).
        `sampling`: see `Pipeline.prepare`."""
        c = self.components
        prompt, s = self.prepare(prompt, **sampling)
        noise_t = int(self.default(noise_t, "interpolation_noise_t"))
        layout = self.layout()
        if latents is None:
            if frames is None:
                raise UserError("give frames or latents to interpolate")
            if not repeat_tail:
                layout.windows(len(frames))
            latents = self.encode_frames(frames, s.height, s.width)
        extra = -latents.shape[2] % layout.input_frames if repeat_tail else 0
        if extra:
            latents = torch.cat([latents, latents[:, :, -1:].expand(-1, -1, extra, -1, -1)], dim=2)
        plan = layout.windows(latents.shape[2])
        text = self.encode_prompt(prompt)
        pieces = []
        with c.using(layout):  # the weights swap once for all windows
            for w, (start, keep_from, keep_to) in enumerate(plan):
                known = latents[:, :, start : start + layout.input_frames]
                out = self.sample_layout(layout, text, known, layout.clip_frames, s, noise_t=noise_t,
                                         label=f"interpolation {w + 1}/{len(plan)}")
                pieces.append(out[:, :, keep_from:keep_to])
        result = torch.cat(pieces, dim=2)
        if extra:  # the frames made from the repeats (and between them) go
            result = result[:, :, : result.shape[2] - layout.factor * extra]
        return VideoOutput(frames=self.decode(result) if decode else None, fps=float(fps) * layout.factor,
                           latents=result, info={"windows": len(plan), "layout": layout.name, "pad": layout.pad})
