"""Euler and Euler-ancestral sampling (Karras et al. 2022, k-diffusion), rewritten in the variance-preserving form.

diffusers' ``EulerDiscreteScheduler`` and ``EulerAncestralDiscreteScheduler`` integrate in "sigma space": their
sample is z = x / alpha (alpha = sqrt(a), sigma = sqrt(1 - a), a = alpha_bar, so z = x0 + s eps with the
noise level s = sigma / alpha), and they scale the model input back to x = z / sqrt(s^2 + 1). Here the state
is the VP latent x itself (x_t = alpha x0 + sigma eps, no input scaling, ``init_noise_sigma`` = 1). With the
network's (x0, eps) estimate at timestep t and the next grid timestep t' (the clean end after the last):

* Euler: diffusers steps z' = z + (s' - s) (z - x0) / s = x0 + s' eps; multiplying by alpha' gives

      x_t' = alpha' x0 + sigma' eps,

  which is exactly deterministic DDIM (eta = 0).

* Euler ancestral: diffusers steps to s_down = s'^2 / s along the ODE, then adds s_up = s' sqrt(1 - (s'/s)^2)
  times fresh noise z. With r = s' / s = (sigma' alpha) / (alpha' sigma) = exp(-(lambda' - lambda)) <= 1,

      x_t' = alpha' x0 + sigma' (r eps + sqrt(1 - r^2) z),

  which is DDIM with eta = 1 (the DDPM posterior). z is ``torch.randn`` of x's shape and dtype on the
  generator's device, as diffusers draws it, and is drawn on every step (the last one too, multiplied by
  0), so a generator seeded alike gives diffusers and this module the same noise.

Zero terminal SNR. With ``zero_terminal_snr=True`` alpha_bar is exactly 0 at t = T - 1, i.e. s = inf, and
diffusers' sigma-space updates would divide inf by inf; diffusers avoids that by clamping alpha_bar[T - 1] to
2**-24 (s = 4096) when ``rescale_betas_zero_snr=True``. The VP forms above never divide by alpha: Euler has no
division at all, and the ancestral ratio r divides only by alpha' sigma, where alpha' > 0 because the target
is less noisy than t and sigma > 0 at every training timestep. From alpha = 0, r = 0: the first ancestral
step is a fresh draw x_t' = alpha' x0 + sigma' z. Given the same clamped alpha_bar the results equal
diffusers' step for step; with the true zero they differ from the clamped run by O(2**-12) on the first step.
"""

from __future__ import annotations

import torch

from ._coefficients import TimestepLike, alpha_bar_at
from .parameterization import predict_x0_and_eps
from .sampler import Sampler, draw_noise

__all__ = ["EulerAncestralSampler", "EulerSampler", "euler_ancestral_step", "euler_step"]


def euler_step(
    model_output: torch.Tensor,
    t: TimestepLike,
    prev_t: TimestepLike,
    x_t: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
    final_alpha_cumprod: float = 1.0,
) -> torch.Tensor:
    """One deterministic Euler step of the probability-flow ODE from ``t`` to ``prev_t`` (a pure function).

    The VP form of diffusers' ``EulerDiscreteScheduler.step``: x_prev = sqrt(a') x0 + sqrt(1 - a') eps, with
    (x0, eps) recovered from ``model_output``. ``t``/``prev_t`` are ints, scalars or ``(B,)`` LongTensors;
    ``prev_t < 0`` means the clean end, whose alpha_bar is ``final_alpha_cumprod``.
    """
    x0, eps = predict_x0_and_eps(model_output, x_t, t, alphas_cumprod, prediction_type)
    a_prev = alpha_bar_at(alphas_cumprod, prev_t, x_t, final_alpha_cumprod=final_alpha_cumprod)
    dtype = x_t.dtype
    return a_prev.sqrt().to(dtype) * x0 + (1.0 - a_prev).sqrt().to(dtype) * eps


def euler_ancestral_step(
    model_output: torch.Tensor,
    t: TimestepLike,
    prev_t: TimestepLike,
    x_t: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
    generator: torch.Generator | None = None,
    final_alpha_cumprod: float = 1.0,
) -> torch.Tensor:
    """One Euler-ancestral step from ``t`` to the less noisy ``prev_t`` (a pure function).

    The VP form of diffusers' ``EulerAncestralDiscreteScheduler.step``: x_prev = sqrt(a') x0 +
    sqrt(1 - a') (r eps + sqrt(1 - r^2) z) with r = sqrt(a (1 - a') / (a' (1 - a))) and z ~ N(0, I) drawn with
    ``generator`` (``torch.randn`` of ``model_output``'s shape and dtype on the generator's device).
    Arguments as for :func:`euler_step`.
    """
    x0, eps = predict_x0_and_eps(model_output, x_t, t, alphas_cumprod, prediction_type)
    a = alpha_bar_at(alphas_cumprod, t, x_t)
    a_prev = alpha_bar_at(alphas_cumprod, prev_t, x_t, final_alpha_cumprod=final_alpha_cumprod)
    alpha, sigma = a.sqrt(), (1.0 - a).sqrt()
    alpha_prev, sigma_prev = a_prev.sqrt(), (1.0 - a_prev).sqrt()
    # r = s' / s, the ratio of sigma-space noise levels, written without dividing by alpha (0 at zero SNR)
    denom = alpha_prev * sigma
    r = (sigma_prev * alpha) / torch.where(denom > 0, denom, torch.ones_like(denom))
    r = torch.where(denom > 0, r, torch.zeros_like(r))
    fresh = (1.0 - r * r).clamp(min=0.0).sqrt()
    dtype = x_t.dtype
    noise = draw_noise(model_output, generator)
    return (
        alpha_prev.to(dtype) * x0
        + (sigma_prev * r).to(dtype) * eps
        + (sigma_prev * fresh).to(dtype) * noise
    )


class EulerSampler(Sampler):
    """Deterministic Euler (diffusers' ``EulerDiscreteScheduler``) in the VP form; equals DDIM with eta = 0."""

    name = "euler"

    def update(self, model_output, t, prev_t, x_t, generator):
        return euler_step(model_output, t, prev_t, x_t, self.alphas_cumprod, self.schedule.prediction_type,
                          final_alpha_cumprod=self.final_alpha_cumprod)


class EulerAncestralSampler(Sampler):
    """Euler ancestral (diffusers' ``EulerAncestralDiscreteScheduler``) in the VP form; equals DDIM with eta = 1.

    Draws fresh noise every step with the ``generator`` passed to :meth:`step` / :meth:`Sampler.sample`.
    """

    name = "euler-ancestral"

    def update(self, model_output, t, prev_t, x_t, generator):
        return euler_ancestral_step(model_output, t, prev_t, x_t, self.alphas_cumprod,
                                    self.schedule.prediction_type, generator=generator,
                                    final_alpha_cumprod=self.final_alpha_cumprod)
