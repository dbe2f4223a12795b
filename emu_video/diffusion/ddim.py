"""DDIM sampling (Song et al. 2021): the timestep grid, one update step, and a small sampler.

One step from t to an earlier timestep s (a = alpha_bar_t, a' = alpha_bar_s, x0/eps recovered from the
network output by :func:`predict_x0_and_eps`):

    sigma  = eta * sqrt((1 - a') / (1 - a) * (1 - a / a'))
    x_s    = sqrt(a') x0 + sqrt(1 - a' - sigma^2) eps + sigma z,    z ~ N(0, I)

eta = 0 is the deterministic DDIM sampler; eta = 1 matches the DDPM posterior variance. The last step
goes to "s = -1", whose alpha_bar is ``final_alpha_cumprod`` (1.0, i.e. the clean sample), so the final
output is the network's x0 estimate.

These semantics match ``diffusers.DDIMScheduler`` with ``set_alpha_to_one=True``, ``steps_offset=0``,
``clip_sample=False`` and thresholding off. One deliberate difference: the previous timestep is the next
entry of the timestep list, whereas diffusers uses ``t - num_train_timesteps // num_inference_steps``.
The two agree for "leading" spacing and for "trailing" spacing when ``num_inference_steps`` divides
``num_train_timesteps`` (e.g. 25, 50, 250 of 1000); otherwise diffusers steps to timesteps it never
evaluates, which this module avoids.
"""

from __future__ import annotations

import torch

from ._coefficients import TimestepLike, alpha_bar_at
from .parameterization import predict_x0_and_eps
from .sampler import Sampler, draw_noise
from .schedules import NoiseSchedule
from .timesteps import SPACINGS, ddim_timesteps

__all__ = ["SPACINGS", "DDIMSampler", "ddim_step", "ddim_timesteps"]


def ddim_step(
    model_output: torch.Tensor,
    t: TimestepLike,
    prev_t: TimestepLike,
    x_t: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    final_alpha_cumprod: float = 1.0,
) -> torch.Tensor:
    """One DDIM update from timestep ``t`` to ``prev_t`` (a pure function).

    ``t``/``prev_t`` are ints, scalars or ``(B,)`` LongTensors; ``prev_t < 0`` means "the clean end",
    whose alpha_bar is ``final_alpha_cumprod``. With ``eta > 0`` fresh Gaussian noise is drawn with
    ``generator`` (``torch.randn`` of ``x_t``'s shape and dtype, as diffusers does).
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    x0, eps = predict_x0_and_eps(model_output, x_t, t, alphas_cumprod, prediction_type)
    a_t = alpha_bar_at(alphas_cumprod, t, x_t)
    a_prev = alpha_bar_at(alphas_cumprod, prev_t, x_t, final_alpha_cumprod=final_alpha_cumprod)
    dtype = x_t.dtype

    if eta > 0:
        variance = (1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev)
        sigma = eta * variance.clamp(min=0.0).sqrt()
    else:
        sigma = torch.zeros_like(a_t)
    dir_coef = (1.0 - a_prev - sigma * sigma).clamp(min=0.0).sqrt()
    x_prev = a_prev.sqrt().to(dtype) * x0 + dir_coef.to(dtype) * eps
    if eta > 0:
        x_prev = x_prev + sigma.to(dtype) * draw_noise(model_output, generator)
    return x_prev


class DDIMSampler(Sampler):
    """DDIM over a :class:`NoiseSchedule`'s grid of ``num_inference_steps`` timesteps.

    The paper samples with 250 DDIM steps. ``init_noise_sigma`` is 1: start from x_T ~ N(0, I).
    """

    name = "ddim"

    def __init__(
        self,
        schedule: NoiseSchedule,
        num_inference_steps: int,
        spacing: str = "trailing",
        eta: float = 0.0,
    ) -> None:
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        super().__init__(schedule, num_inference_steps, spacing)
        self.eta = float(eta)

    def update(self, model_output: torch.Tensor, t: int, prev_t: int, x_t: torch.Tensor,
               generator: torch.Generator | None) -> torch.Tensor:
        return ddim_step(model_output, t, prev_t, x_t, self.alphas_cumprod, self.schedule.prediction_type,
                         eta=self.eta, generator=generator, final_alpha_cumprod=self.final_alpha_cumprod)
