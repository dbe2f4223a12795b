"""DPM-Solver++(2M) (Lu et al. 2022): the multistep, second-order, data-prediction ODE solver.

Notation for one step from grid timestep s (the current one) to the next, less noisy one t, with
a = alpha_bar, alpha = sqrt(a), sigma = sqrt(1 - a) and the log-SNR lambda = log(alpha / sigma):

    h      = lambda_t - lambda_s                     (> 0: the step size in log-SNR)
    c      = alpha_t * (1 - exp(-h)) = alpha_t - alpha_s * sigma_t / sigma_s
    x_t    = (sigma_t / sigma_s) x_s + c * D

First order (the first step, the last step, or whenever no earlier estimate is available), D = x0_s, the
network's x0 estimate at s; this is DDIM with eta = 0. Second order ("2M", midpoint form) also uses the x0
estimate of the step before, taken at timestep u > s with h_u = lambda_s - lambda_u:

    D = x0_s + (h / (2 h_u)) * (x0_s - x0_u)

The sampler walks the same grid as :class:`~emu_video.diffusion.ddim.DDIMSampler` (``ddim_timesteps``,
"trailing" by default) and takes its last step to the clean end (alpha_bar = 1, sigma = 0), like diffusers'
``DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero")``.
That last step is always first order: towards sigma = 0 we have h -> inf, and the second-order weight
h / (2 h_u) diverges (diffusers forces a first-order final step whenever ``final_sigmas_type="zero"``, which
covers its ``lower_order_final`` rule for fewer than 15 steps; k-diffusion's ``sample_dpmpp_2m`` does the
same). The network output is turned into x0 with :func:`predict_x0_and_eps` ("epsilon" or "v_prediction").

Zero terminal SNR. With ``zero_terminal_snr=True`` alpha_bar is exactly 0 at t = T - 1, so sigma_ve =
sigma / alpha = inf and lambda = -inf there. Nothing here divides by alpha: the first-order step only
uses sigma_t / sigma_s and c = alpha_t - alpha_s sigma_t / sigma_s (sigma_s > 0 at every training
timestep), which from alpha_s = 0 give x_t = sigma_t x_T + alpha_t x0. The second-order weight h / h_u is
computed only where both log-SNR differences are finite and is taken as its limit 0 otherwise: on the
step after t = T - 1, h_u = lambda_s - (-inf) = inf, so that step is effectively first order. diffusers
instead clamps alpha_bar[T - 1] to 2**-24 when ``rescale_betas_zero_snr=True`` (sigma_ve = 4096,
lambda = -log 4096 ~ -8.3), so its first step sees alpha = 2**-12 rather than 0 and its second step keeps
a small multistep correction; the two agree step for step when given the same clamped alpha_bar.
"""

from __future__ import annotations

import torch

from ._coefficients import TimestepLike, alpha_bar_at
from .parameterization import predict_x0_and_eps
from .sampler import Sampler
from .schedules import NoiseSchedule

__all__ = ["DPMSolverMultistepSampler", "dpmpp_2m_step"]


def _log_snr(a: torch.Tensor) -> torch.Tensor:
    """lambda = log(alpha / sigma) = (log a - log(1 - a)) / 2; -inf at a = 0 and +inf at a = 1."""
    return 0.5 * (torch.log(a) - torch.log1p(-a))


def dpmpp_2m_step(
    x0: torch.Tensor,
    last_x0: torch.Tensor | None,
    last_t: TimestepLike | None,
    t: TimestepLike,
    prev_t: TimestepLike,
    x_t: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    final_alpha_cumprod: float = 1.0,
) -> torch.Tensor:
    """One DPM-Solver++(2M) update of ``x_t`` from timestep ``t`` to ``prev_t`` (a pure function).

    ``x0`` is the network's x0 estimate at ``(x_t, t)``. ``last_x0`` is the estimate made one step earlier
    in the chain, at the noisier timestep ``last_t``; pass ``None`` (and any ``last_t``) for a first-order
    step. Timesteps are ints, scalars or ``(B,)`` LongTensors, in chain order ``last_t > t > prev_t``;
    ``prev_t < 0`` means the clean end, whose alpha_bar is ``final_alpha_cumprod``. Where the target is the
    clean end (sigma = 0) or ``last_t`` has alpha_bar = 0 the second-order term is dropped (see the module
    docstring). Returns x at ``prev_t``, in ``x_t``'s dtype; coefficients are computed in float64.
    """
    dtype = x_t.dtype
    a_s = alpha_bar_at(alphas_cumprod, t, x_t)
    a_t = alpha_bar_at(alphas_cumprod, prev_t, x_t, final_alpha_cumprod=final_alpha_cumprod)
    alpha_s, sigma_s = a_s.sqrt(), (1.0 - a_s).sqrt()
    alpha_t, sigma_t = a_t.sqrt(), (1.0 - a_t).sqrt()

    sigma_ratio = sigma_t / sigma_s  # = exp(-h) * alpha_t / alpha_s, finite: sigma_s > 0 on the training grid
    c = alpha_t - alpha_s * sigma_ratio  # = alpha_t * (1 - exp(-h)); alpha_t when alpha_s = 0
    d = x0
    if last_x0 is not None:
        if last_t is None:
            raise ValueError("last_t is required with last_x0")
        a_u = alpha_bar_at(alphas_cumprod, last_t, x_t)
        lam_s = _log_snr(a_s)
        h = _log_snr(a_t) - lam_s
        h_last = lam_s - _log_snr(a_u)
        finite = torch.isfinite(h) & torch.isfinite(h_last)
        # h / h_last where both are finite; 0 where h_last = inf (alpha_bar_u = 0, the limit) or h = inf
        # (the clean end, where the correction diverges and a first-order step is taken instead).
        weight = torch.where(finite, h, torch.zeros_like(h)) / torch.where(finite, h_last, torch.ones_like(h_last))
        d = x0 + (0.5 * weight).to(dtype) * (x0 - last_x0)
    return sigma_ratio.to(dtype) * x_t + c.to(dtype) * d


class DPMSolverMultistepSampler(Sampler):
    """DPM-Solver++(2M) over the ``ddim_timesteps`` grid; the first and last steps are first order.

    State: the previous step's x0 estimate and its timestep, cleared by :meth:`reset` (which `sample` calls).
    A step uses the stored estimate only if it was made at the grid entry just before ``t``, so a chain
    restarted at ``timesteps[0]`` never mixes in stale state.
    """

    name = "dpmpp-2m"

    def __init__(self, schedule: NoiseSchedule, num_inference_steps: int, spacing: str = "trailing") -> None:
        super().__init__(schedule, num_inference_steps, spacing)
        self._last_x0: torch.Tensor | None = None
        self._last_t: int | None = None

    def reset(self) -> None:
        """Forget the previous x0 estimate (the next step is first order)."""
        self._last_x0 = None
        self._last_t = None

    def update(self, model_output, t, prev_t, x_t, generator):
        """``generator`` is unused (the solver is deterministic)."""
        i = self.index_of(t)
        x0, _ = predict_x0_and_eps(model_output, x_t, t, self.alphas_cumprod, self.schedule.prediction_type)
        second_order = (
            self._last_x0 is not None
            and i > 0
            and self._last_t == int(self.timesteps[i - 1])
            and prev_t >= 0  # lower-order final step: towards sigma = 0 the correction diverges
        )
        x_prev = dpmpp_2m_step(
            x0,
            self._last_x0 if second_order else None,
            self._last_t if second_order else None,
            t,
            prev_t,
            x_t,
            self.alphas_cumprod,
            final_alpha_cumprod=self.final_alpha_cumprod,
        )
        self._last_x0, self._last_t = x0, t
        return x_prev
