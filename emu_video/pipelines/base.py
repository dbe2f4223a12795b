"""What every pipeline shares, as named steps: check inputs, prepare latents and conditions, denoise, decode.

A pipeline's `__call__` reads as those steps: `prepare` checks the prompt and fills every unset setting
from the model folder's defaults; `encode_frames` / `encode_prompt` turn inputs into latents and contexts;
`sample_layout` places known frames by a conditioning layout, draws the starting noise and runs `denoise`
(the chosen sampler over the layout's guidance); `decode` turns latents into frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from emu_video.data.frames import to_model_pixels
from emu_video.diffusion import NoiseSchedule
from emu_video.diffusion.guidance import TRUNCATION_KEEPS, Guidance, Pass, truncated_guidance
from emu_video.diffusion.layouts import Layout
from emu_video.diffusion.samplers import SAMPLERS, make_sampler
from emu_video.errors import UserError
from emu_video.models.deep_cache import DeepFeatureCache
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


def check_weight(value, name: str) -> float:
    """A guidance weight as a float; NaN and infinities are refused (they would make an all-black video)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value}")
    return value


def check_cfg_truncation(value) -> float:
    value = check_weight(value, "cfg_truncation")
    if not 0.0 <= value <= 1.0:
        raise UserError(f"cfg_truncation is the share of steps that keep full guidance, from 0 to 1; got {value:g}")
    return value


def check_truncation_keep(value) -> str:
    if value not in TRUNCATION_KEEPS:
        raise UserError(f"cfg_truncation_keep must be one of {', '.join(TRUNCATION_KEEPS)}, got {value!r}")
    return value


def check_cache_interval(value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 1 <= value <= 1000:
        raise UserError(f"cache_interval must be an integer from 1 (no caching) to 1000, got {value!r}")
    return int(value)


def guided_steps(num_steps: int, cfg_truncation: float) -> int:
    """How many of a loop's first steps run every guidance pass under CFG truncation: the fraction
    `cfg_truncation` of `num_steps`, rounded half up (1.0: all; 0.6 of 10: 6, the last 4 truncated)."""
    return min(num_steps, int(math.floor(cfg_truncation * num_steps + 0.5 + 1e-9)))


def check_sampler(name: str) -> str:
    if name not in SAMPLERS:
        raise UserError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    return name


@dataclass
class Settings:
    """One call's sampling settings, every unset one filled from the model folder's defaults."""

    steps: int
    sampler: str
    w_img: float
    w_txt: float
    height: int
    width: int
    generator: torch.Generator
    callback: StepCallback | None = None  # called after every sampler step: callback(i, t, latents)
    progress: bool = True  # a progress bar per denoising loop
    cfg_truncation: float = 1.0  # share of each loop's steps that run every guidance pass (1: all of them)
    cfg_truncation_keep: str = "cond"  # what the later steps keep: "cond" (1 pass) or "text" (drops the null pass)
    cache_interval: int = 1  # a full U-Net pass every N steps, shallow ones reusing deep features between (1: off)


# The guided model ------------------------------------------------------------------------------------------
class ConditionedUNet:
    """The U-Net bound to one prompt and one set of known frames: what a `Guidance` batches passes of.

    A pass without text reads the empty prompt's contexts; a pass without the image gets zero conditioning
    channels (latents and mask), as in training's condition dropout.
    """

    def __init__(self, components: EmuVideoComponents, text: list[torch.Tensor], cond: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None, use_temporal: bool = True):
        self.unet = components.unet
        self.null = components.null_embeddings()
        self.text = text
        self.channels = None if cond is None else torch.cat([cond, mask.to(cond.dtype)], dim=1)
        self.use_temporal = use_temporal
        self.cache: DeepFeatureCache | None = None  # set by `denoise` when step caching is on

    def pass_inputs(self, p: Pass) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        b = self.text[0].shape[0]
        contexts = [txt if p.text else null.expand(b, -1, -1) for txt, null in zip(self.text, self.null)]
        if self.channels is None:
            return None, contexts
        return (self.channels if p.image else torch.zeros_like(self.channels)), contexts

    def __call__(self, sample: torch.Tensor, t: torch.Tensor, contexts: list[torch.Tensor]) -> torch.Tensor:
        if self.cache is None:
            return self.unet(sample, t, contexts, use_temporal=self.use_temporal)
        return self.unet(sample, t, contexts, use_temporal=self.use_temporal, cache=self.cache)


def denoise(
    guidance: Guidance,
    model: ConditionedUNet,
    schedule: NoiseSchedule,
    latents: torch.Tensor,
    settings: Settings,
    label: str | None = None,
) -> torch.Tensor:
    """The chosen sampler from `latents` (pure noise at t=T) to the final latents, the model guided; `label`
    names the stage on the progress bar.

    Two speed levers of `settings`: CFG truncation (after the first `cfg_truncation` share of the steps,
    the guidance of `truncated_guidance`: fewer passes per step) and step caching (`cache_interval` > 1: a
    full U-Net pass every that many steps, shallow passes reusing its deep features in between; see
    emu_video/models/deep_cache.py). At their defaults (1.0 and 1) the loop is the plain guided sampler."""
    steps = check_steps(settings.steps)
    sampler = make_sampler(check_sampler(settings.sampler), schedule, steps)
    guided = guided_steps(steps, check_cfg_truncation(settings.cfg_truncation))
    early = guidance.denoiser(model)
    late = truncated_guidance(guidance, check_truncation_keep(settings.cfg_truncation_keep)).denoiser(model) \
        if guided < steps else early
    interval = check_cache_interval(settings.cache_interval)
    model.cache = DeepFeatureCache(interval) if interval > 1 else None

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        i = sampler.index_of(t)
        if model.cache is not None:
            model.cache.refresh(i)
        return (early if i < guided else late)(x, t).to(x.dtype)

    try:
        with torch.inference_mode():
            x = sampler.sample(fn, latents, callback=settings.callback, progress=settings.progress,
                               generator=settings.generator, desc=label)
    finally:
        model.cache = None  # frees the cached feature
    return x.to(latents.dtype)


# Pipelines -------------------------------------------------------------------------------------------------
class Pipeline:
    """What every pipeline has: its model folder's components, the folder's sampling defaults, and the named
    steps of a call.

    Every pipeline's `__call__` takes `**sampling`: seed, generator, num_inference_steps, sampler, w_img,
    w_txt, height, width, callback, progress (see `prepare`).
    """

    steps_key = "steps"  # the model default that sets this pipeline's step count

    def __init__(self, components: EmuVideoComponents):
        self.components = components

    @classmethod
    def from_pretrained(cls, model=None, device="cpu", dtype=None, lora=()):
        """The pipeline of model folder `model`; `lora`: (adapter folder, scale) pairs merged into it."""
        return cls(EmuVideoComponents.from_pretrained(model, device, dtype, lora=lora))

    def default(self, value, key: str):
        """`value`, or the model's default for `key` when it is None (0 stays 0 and is then refused)."""
        return self.components.defaults[key] if value is None else value

    # Check inputs ------------------------------------------------------------------------------------------
    def prepare(self, prompt, *, seed: int | None = None, generator: torch.Generator | None = None,
                num_inference_steps: int | None = None, sampler: str | None = None, w_img: float | None = None,
                w_txt: float | None = None, height: int | None = None, width: int | None = None,
                callback: StepCallback | None = None, progress: bool = True, cfg_truncation: float | None = None,
                cfg_truncation_keep: str | None = None, cache_interval: int | None = None) -> tuple[str, Settings]:
        """The checked prompt and the call's settings: every pipeline's `**sampling` keywords, any left out
        filled from the model folder's defaults, and a generator made from `seed` unless one is given
        (noise is drawn on the CPU, so a seed gives the same video on any device).

        Speed levers (each off at 1.0 / 1 unless the model folder's defaults set it): `cfg_truncation`, the
        share of each denoising loop's steps that run every guidance pass (0.6: the last 40 % of the steps
        run fewer passes); `cfg_truncation_keep`, what those steps keep ("cond": the fully conditioned pass
        alone; "text": text guidance without the unconditional pass); `cache_interval`, a full U-Net pass
        every that many steps and shallow ones, reusing its deep features, in between."""
        settings = Settings(
            steps=check_steps(self.default(num_inference_steps, self.steps_key)),
            sampler=check_sampler(self.default(sampler, "sampler")),
            w_img=check_weight(self.default(w_img, "w_img"), "w_img"),
            w_txt=check_weight(self.default(w_txt, "w_txt"), "w_txt"),
            height=int(self.default(height, "height")), width=int(self.default(width, "width")),
            generator=generator or make_generator(seed), callback=callback, progress=progress,
            cfg_truncation=check_cfg_truncation(self.default(cfg_truncation, "cfg_truncation")),
            cfg_truncation_keep=check_truncation_keep(self.default(cfg_truncation_keep, "cfg_truncation_keep")),
            cache_interval=check_cache_interval(self.default(cache_interval, "cache_interval")),
        )
        return check_prompt(prompt), settings

    # Prepare latents and conditions ------------------------------------------------------------------------
    def encode_prompt(self, prompt: str) -> list[torch.Tensor]:
        return self.components.encode_prompts([prompt])

    def encode_frames(self, frames: np.ndarray, height: int, width: int) -> torch.Tensor:
        """(T, H, W, 3) or (H, W, 3) uint8 -> latents (1, C, T, h, w), centre-cropped and resized first."""
        c = self.components
        return c.vae.encode(frames_to_tensor(frames, height, width).to(c.device, c.dtype))

    def sample_layout(self, layout: Layout, text: list[torch.Tensor], known: torch.Tensor, num_frames: int,
                      settings: Settings, noise_t: int | None = None, label: str | None = None) -> torch.Tensor:
        """Latents (B, C, num_frames, h, w) with the `known` latents (B, C, K, h, w) at the layout's positions,
        noise-augmented to level `noise_t` first when given; sampled with the weights and schedule the model
        folder has for the layout, and the layout's guidance."""
        c = self.components
        layout.check_frames(num_frames)
        with c.using(layout) as schedule:
            known = known.to(c.device, c.dtype)
            if noise_t is not None:
                if not 0 <= noise_t < schedule.num_train_timesteps:
                    raise UserError(f"noise_t must be in 0..{schedule.num_train_timesteps - 1}, got {noise_t}")
                noise = randn(known.shape, settings.generator, c.device, c.dtype)
                t = torch.full((known.shape[0],), noise_t, dtype=torch.long, device=c.device)
                known = layout.augment(known, noise, t, schedule.alphas_cumprod.to(c.device)).to(c.dtype)
            cond, mask = layout.condition(known, num_frames)
            x = randn(cond.shape, settings.generator, c.device, c.dtype)
            model = ConditionedUNet(c, text, cond, mask)
            return denoise(layout.guidance(settings.w_img, settings.w_txt), model, schedule, x, settings,
                           label or layout.name.replace("_", " "))

    # Decode ------------------------------------------------------------------------------------------------
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """(1, C, T, h, w) latents -> (T, H, W, 3) uint8 frames."""
        return tensor_to_frames(self.components.vae.decode(latents))
