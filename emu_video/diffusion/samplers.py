"""The registry of samplers: the one place a new sampler is made choosable (`--sampler NAME`)."""

from __future__ import annotations

from .ddim import DDIMSampler
from .dpm_solver import DPMSolverMultistepSampler
from .euler import EulerAncestralSampler, EulerSampler
from .sampler import Sampler
from .schedules import NoiseSchedule

__all__ = ["DEFAULT_SAMPLER", "SAMPLERS", "make_sampler"]

SAMPLERS: dict[str, type[Sampler]] = {
    cls.name: cls for cls in (DDIMSampler, DPMSolverMultistepSampler, EulerSampler, EulerAncestralSampler)
}
DEFAULT_SAMPLER = "ddim"


def make_sampler(name: str, schedule: NoiseSchedule, num_inference_steps: int, **options) -> Sampler:
    """The sampler registered as `name` over `schedule` with `num_inference_steps` model evaluations."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    return SAMPLERS[name](schedule, num_inference_steps, **options)
