"""What every pipeline shares: inputs checked, seeds, frame conversion, and the guided denoising loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from emu_video.data.frames import to_model_pixels
from emu_video.diffusion import (
    DDIMSampler,
    NoiseSchedule,
    classifier_free_guidance,
    two_condition_guidance,
)
from emu_video.diffusion.conditioning import unet_input
from emu_video.errors import UserError
from emu_video.pipelines.components import EmuVideoComponents

StepCallback = Callable[[int, torch.Tensor, torch.Tensor], None]


@dataclass
class VideoOutput:
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float
    latents: torch.Tensor | None = None  # (1, C, T, h, w)
    first_frame: np.ndarray | None = None  # (H, W, 3) uint8, when asked for
    info: dict = field(default_factory=dict)


@dataclass
class ImageOutput:
    image: np.ndarray  # (H, W, 3) uint8
    latents: torch.Tensor | None = None  # (1, C, h, w)


def check_steps(steps: int) -> int:
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1 or steps > 1000:
        raise UserError(f"steps must be an integer from 1 to 1000, got {steps!r}")
    return int(steps)


def check_prompt(prompt) -> str:
    if not isinstance(prompt, str):
        raise UserError(f"the prompt must be a string, got {type(prompt).__name__}")
    return prompt


def make_generator(seed: int | None) -> torch.Generator:
    """Noise is always drawn on the CPU from this generator, so a seed gives the same video on any device."""
    g = torch.Generator("cpu")
    g.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2**31 - 1, (1,)).item()))
    return g


def randn(shape: Sequence[int], generator: torch.Generator, device, dtype) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)


# Pixels ---------------------------------------------------------------------------------------------------
def frames_to_tensor(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (1, 3, T, height, width) in [-1, 1]: centre crop to the aspect ratio, then resize."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise UserError(f"expected RGB frames shaped (T, H, W, 3), got {tuple(frames.shape)}")
    if min(frames.shape[1:3]) < 8:
        raise UserError(f"frames of {frames.shape[2]}x{frames.shape[1]} px are too small (at least 8x8 px)")
    return to_model_pixels(frames.astype(np.uint8, copy=False), height, width).clamp(-1, 1).unsqueeze(0)


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """(1, 3, T, H, W) or (3, T, H, W) in [-1, 1] -> (T, H, W, 3) uint8."""
    if video.ndim == 5:
        video = video[0]
    x = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).cpu().numpy()


class Pipeline:
    """What every pipeline has: its model folder's components and the folder's sampling defaults."""

    def __init__(self, components: EmuVideoComponents):
        self.components = components

    @classmethod
    def from_pretrained(cls, model=None, device="cpu", dtype=None):
        return cls(EmuVideoComponents.from_pretrained(model, device, dtype))

    def default(self, value, key: str):
        """`value`, or the model's default for `key` when it is None (0 stays 0 and is then refused)."""
        return self.components.defaults[key] if value is None else value


# Denoising -------------------------------------------------------------------------------------------------
class GuidedDenoiser:
    """Runs the U-Net with classifier-free guidance, all passes batched in one forward.

    Two conditions (video, interpolation): X(∅) + w_img (X(I) − X(∅)) + w_txt (X(I,p) − X(I)), where X(∅)
    drops the text and the concatenated conditioning latents and mask. One condition (the first frame):
    X(∅) + w (X(p) − X(∅)) with the temporal layers off.
    """

    def __init__(
        self,
        components: EmuVideoComponents,
        text: list[torch.Tensor],
        cond: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        w_img: float = 2.0,
        w_txt: float = 7.5,
        use_temporal: bool = True,
    ):
        self.unet = components.unet
        self.null = components.null_embeddings()
        self.text = text
        self.cond, self.mask = cond, mask
        self.w_img, self.w_txt = float(w_img), float(w_txt)
        self.use_temporal = use_temporal
        self._context_cache: dict[tuple[str, ...], list[torch.Tensor]] = {}
        self._cond3: torch.Tensor | None = None

    def _contexts(self, kinds: Sequence[str]) -> list[torch.Tensor]:
        key = tuple(kinds)
        cached = self._context_cache.get(key)
        if cached is None:  # the same every step: built once
            b = self.text[0].shape[0]
            cached = []
            for txt, null in zip(self.text, self.null):
                cached.append(torch.cat([txt if kind == "text" else null.expand(b, -1, -1) for kind in kinds]))
            self._context_cache[key] = cached
        return cached

    def _conditioning(self, dtype: torch.dtype) -> torch.Tensor:
        """The conditioning channels of the batched passes [X(∅), X(I), X(I,p)]: zeros, then the latent and mask
        twice. They do not change from step to step, so they are concatenated once."""
        if self._cond3 is None or self._cond3.dtype != dtype:
            cond_mask = torch.cat([self.cond.to(dtype), self.mask.to(dtype)], dim=1)
            self._cond3 = torch.cat([torch.zeros_like(cond_mask), cond_mask, cond_mask])
        return self._cond3

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        t_batch = lambda n: t.reshape(1).expand(n * b)  # noqa: E731
        if self.cond is None:  # one condition: text
            if self.w_txt == 1.0:
                return self.unet(x, t_batch(1), self.text, use_temporal=self.use_temporal)
            out = self.unet(torch.cat([x, x]), t_batch(2), self._contexts(["null", "text"]), self.use_temporal)
            uncond, cond = out.chunk(2)
            return classifier_free_guidance(uncond, cond, self.w_txt)
        if self.w_img == 1.0 and self.w_txt == 1.0:
            full = unet_input(x, self.cond, self.mask)
            return self.unet(full, t_batch(1), self.text, use_temporal=self.use_temporal)
        batched = torch.cat([torch.cat([x, x, x]), self._conditioning(x.dtype)], dim=1)
        out = self.unet(batched, t_batch(3), self._contexts(["null", "null", "text"]), self.use_temporal)
        x_null, x_image, x_full = out.chunk(3)
        return two_condition_guidance(x_null, x_image, x_full, self.w_img, self.w_txt)


def denoise(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: NoiseSchedule,
    latents: torch.Tensor,
    steps: int,
    callback: StepCallback | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """DDIM ("trailing" spacing, eta 0) from `latents` (pure noise at t=T) to the final latents."""
    sampler = DDIMSampler(schedule, check_steps(steps), spacing="trailing")
    with torch.inference_mode():
        x = sampler.sample(lambda x, t: denoiser(x, t).to(x.dtype), latents, callback=callback, progress=progress)
    return x.to(latents.dtype)
