"""Forward process and conversions between the x0, epsilon and v parameterisations.

With a = alpha_bar_t (the cumulative product of 1 - beta up to t):

* forward process:  x_t = sqrt(a) x0 + sqrt(1 - a) eps
* velocity:         v   = sqrt(a) eps - sqrt(1 - a) x0
* hence             x0  = sqrt(a) x_t - sqrt(1 - a) v,   eps = sqrt(a) v + sqrt(1 - a) x_t
* and from eps:     x0  = (x_t - sqrt(1 - a) eps) / sqrt(a)    (undefined where a = 0)

``t`` is a LongTensor of shape ``(B,)`` (one timestep per sample) or a scalar; the coefficients
broadcast over any trailing dims, e.g. ``(B, C, T, H, W)`` video latents or ``(B, C, H, W)`` images.
Coefficients are computed in float64 and cast to the dtype of the tensors they multiply.
"""

from __future__ import annotations

import torch

from ._coefficients import TimestepLike, alpha_bar_at
from .schedules import PREDICTION_TYPES, NoiseSchedule

__all__ = [
    "add_noise",
    "eps_to_v",
    "eps_to_x0",
    "predict_x0_and_eps",
    "training_target",
    "v_to_eps",
    "v_to_x0",
    "velocity",
]


def _sqrt_pair(alphas_cumprod: torch.Tensor, t: TimestepLike, like: torch.Tensor):
    a = alpha_bar_at(alphas_cumprod, t, like)
    return a.sqrt().to(like.dtype), (1.0 - a).sqrt().to(like.dtype)


def add_noise(
    x0: torch.Tensor, noise: torch.Tensor, t: TimestepLike, alphas_cumprod: torch.Tensor
) -> torch.Tensor:
    """Sample q(x_t | x0): sqrt(a_t) x0 + sqrt(1 - a_t) noise."""
    s_a, s_1ma = _sqrt_pair(alphas_cumprod, t, x0)
    return s_a * x0 + s_1ma * noise


def velocity(
    x0: torch.Tensor, noise: torch.Tensor, t: TimestepLike, alphas_cumprod: torch.Tensor
) -> torch.Tensor:
    """The v target: sqrt(a_t) noise - sqrt(1 - a_t) x0."""
    s_a, s_1ma = _sqrt_pair(alphas_cumprod, t, x0)
    return s_a * noise - s_1ma * x0


def training_target(
    x0: torch.Tensor, noise: torch.Tensor, t: TimestepLike, schedule: NoiseSchedule,
    alphas_cumprod: torch.Tensor | None = None,
) -> torch.Tensor:
    """What the network is trained to output: the noise (epsilon) or v, per ``schedule.prediction_type``.

    ``alphas_cumprod``: the schedule's values already on the tensors' device (default: the schedule's own).
    """
    if schedule.prediction_type == "epsilon":
        return noise
    if schedule.prediction_type == "v_prediction":
        return velocity(x0, noise, t, schedule.alphas_cumprod if alphas_cumprod is None else alphas_cumprod)
    raise ValueError(f"unknown prediction_type {schedule.prediction_type!r}")


def predict_x0_and_eps(
    model_output: torch.Tensor,
    x_t: torch.Tensor,
    t: TimestepLike,
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Recover (x0, eps) from the network output at x_t.

    For ``"epsilon"`` the x0 estimate divides by sqrt(a_t) and is undefined where a_t = 0 (a zero
    terminal SNR at t = T); ``"v_prediction"`` is defined everywhere.
    """
    if prediction_type == "epsilon":
        return eps_to_x0(model_output, x_t, t, alphas_cumprod), model_output
    if prediction_type == "v_prediction":
        s_a, s_1ma = _sqrt_pair(alphas_cumprod, t, x_t)
        return s_a * x_t - s_1ma * model_output, s_a * model_output + s_1ma * x_t
    raise ValueError(f"unknown prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")


def eps_to_x0(
    eps: torch.Tensor, x_t: torch.Tensor, t: TimestepLike, alphas_cumprod: torch.Tensor
) -> torch.Tensor:
    """x0 = (x_t - sqrt(1 - a) eps) / sqrt(a). Undefined where a = 0."""
    a = alpha_bar_at(alphas_cumprod, t, x_t)
    return (x_t - (1.0 - a).sqrt().to(x_t.dtype) * eps) / a.sqrt().to(x_t.dtype)


def v_to_x0(v: torch.Tensor, x_t: torch.Tensor, t: TimestepLike, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x0 = sqrt(a) x_t - sqrt(1 - a) v."""
    s_a, s_1ma = _sqrt_pair(alphas_cumprod, t, x_t)
    return s_a * x_t - s_1ma * v


def v_to_eps(v: torch.Tensor, x_t: torch.Tensor, t: TimestepLike, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """eps = sqrt(a) v + sqrt(1 - a) x_t."""
    s_a, s_1ma = _sqrt_pair(alphas_cumprod, t, x_t)
    return s_a * v + s_1ma * x_t


def eps_to_v(eps: torch.Tensor, x_t: torch.Tensor, t: TimestepLike, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """v = (eps - sqrt(1 - a) x_t) / sqrt(a). Undefined where a = 0."""
    a = alpha_bar_at(alphas_cumprod, t, x_t)
    return (eps - (1.0 - a).sqrt().to(x_t.dtype) * x_t) / a.sqrt().to(x_t.dtype)
