"""Noise schedules: the LDM "quad" betas, the zero-terminal-SNR rescale, and a small config object.

Everything here is computed in float64. Callers cast the per-timestep coefficients to the dtype of the
tensors they work on (see :mod:`emu_video.diffusion.parameterization`).

The two presets mirror the paper (section 2 of the notes):

* 256px stage: "quad" schedule, beta from 8.5e-4 to 1.2e-2 over N = 1000 steps, epsilon prediction.
* 512px, HQ fine-tune and interpolation stages: the same schedule rescaled to zero terminal SNR
  (alpha_bar_N = 0), with v-prediction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Any

import torch

__all__ = [
    "PREDICTION_TYPES",
    "NoiseSchedule",
    "alphas_cumprod_from_betas",
    "quad_betas",
    "rescale_zero_terminal_snr",
]

PREDICTION_TYPES = ("epsilon", "v_prediction")


def quad_betas(
    num_train_timesteps: int = 1000, beta_start: float = 8.5e-4, beta_end: float = 1.2e-2
) -> torch.Tensor:
    """The LDM "quad" (a.k.a. "scaled_linear") schedule: sqrt(beta) is linear in t, then squared.

    Returns a float64 tensor of shape ``(num_train_timesteps,)``.
    """
    if int(num_train_timesteps) != num_train_timesteps or num_train_timesteps < 1:
        raise ValueError(f"num_train_timesteps must be a positive integer, got {num_train_timesteps!r}")
    root = torch.linspace(
        math.sqrt(beta_start), math.sqrt(beta_end), int(num_train_timesteps), dtype=torch.float64
    )
    return root * root


def alphas_cumprod_from_betas(betas: torch.Tensor) -> torch.Tensor:
    """alpha_bar_t = prod_{s <= t} (1 - beta_s), in float64."""
    return torch.cumprod(1.0 - betas.to(torch.float64), dim=0)


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Rescale ``betas`` so the terminal SNR is exactly zero (Lin et al. 2023, Algorithm 1).

    sqrt(alpha_bar) is shifted so that its last value is 0, then scaled so that its first value is
    unchanged; the betas are then recovered from the new cumulative product. The last beta becomes 1.
    Works in float64 and returns float64.
    """
    betas = betas.to(torch.float64)
    if betas.ndim != 1 or betas.numel() < 2:
        raise ValueError("rescale_zero_terminal_snr needs a 1-D schedule with at least 2 betas")
    sqrt_ab = alphas_cumprod_from_betas(betas).sqrt()
    first, last = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
    if not first > last:
        raise ValueError("the schedule's alpha_bar must decrease over time to be rescaled")
    sqrt_ab = (sqrt_ab - last) * (first / (first - last))
    alpha_bar = sqrt_ab * sqrt_ab
    alphas = torch.cat([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])
    return 1.0 - alphas


@dataclass(frozen=True)
class NoiseSchedule:
    """A discrete DDPM noise schedule with its prediction target.

    ``prediction_type`` is what the network predicts: ``"epsilon"`` (the noise) or ``"v_prediction"``
    (v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0).

    Epsilon prediction together with a zero terminal SNR is refused: at t = T the schedule has
    alpha_bar_T = 0, and recovering x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar) divides by zero.
    """

    num_train_timesteps: int = 1000
    beta_start: float = 8.5e-4
    beta_end: float = 1.2e-2
    zero_terminal_snr: bool = False
    prediction_type: str = "epsilon"

    def __post_init__(self) -> None:
        n = self.num_train_timesteps
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"num_train_timesteps must be a positive integer, got {n!r}")
        if not (0.0 < self.beta_start < 1.0 and 0.0 < self.beta_end < 1.0):
            raise ValueError(
                f"beta_start and beta_end must lie in (0, 1), got {self.beta_start!r} and {self.beta_end!r}"
            )
        if self.beta_start > self.beta_end:
            raise ValueError(
                f"beta_start ({self.beta_start}) must not exceed beta_end ({self.beta_end})"
            )
        if not isinstance(self.zero_terminal_snr, bool):
            raise ValueError(f"zero_terminal_snr must be a bool, got {self.zero_terminal_snr!r}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"unknown prediction_type {self.prediction_type!r}; expected one of {PREDICTION_TYPES}"
            )
        if self.zero_terminal_snr:
            if n < 2:
                raise ValueError("a zero-terminal-SNR schedule needs at least 2 timesteps")
            if self.beta_start == self.beta_end:
                raise ValueError("a zero-terminal-SNR schedule needs beta_start < beta_end")
            if self.prediction_type == "epsilon":
                raise ValueError(
                    "prediction_type='epsilon' cannot be combined with zero_terminal_snr=True: the rescaled "
                    "schedule has alpha_bar_T = 0 at the last timestep, so recovering "
                    "x0 = (x_t - sqrt(1 - alpha_bar) * eps) / sqrt(alpha_bar) divides by zero there (and an "
                    "epsilon target at pure noise carries no information about x0). Use "
                    "prediction_type='v_prediction' with zero_terminal_snr=True, as the paper does."
                )

    # ------------------------------------------------------------------ presets
    @classmethod
    def stage_256(cls) -> NoiseSchedule:
        """The 256px stage: LDM "quad" schedule, epsilon prediction."""
        return cls(zero_terminal_snr=False, prediction_type="epsilon")

    @classmethod
    def stage_512(cls) -> NoiseSchedule:
        """The 512px / HQ fine-tune / interpolation stages: quad rescaled to zero terminal SNR, v-prediction."""
        return cls(zero_terminal_snr=True, prediction_type="v_prediction")

    # ------------------------------------------------------------------ tensors
    @cached_property
    def _betas(self) -> torch.Tensor:
        betas = quad_betas(self.num_train_timesteps, self.beta_start, self.beta_end)
        if self.zero_terminal_snr:
            betas = rescale_zero_terminal_snr(betas)
        return betas

    @cached_property
    def _alphas_cumprod(self) -> torch.Tensor:
        return alphas_cumprod_from_betas(self._betas)

    @property
    def betas(self) -> torch.Tensor:
        """float64 tensor of shape (num_train_timesteps,) (a fresh copy each call)."""
        return self._betas.clone()

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """alpha_bar_t, float64 tensor of shape (num_train_timesteps,) (a fresh copy each call)."""
        return self._alphas_cumprod.clone()

    @property
    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) per timestep (0 at t = T for zero-SNR)."""
        ab = self._alphas_cumprod
        return ab / (1.0 - ab)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoiseSchedule:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown NoiseSchedule keys {unknown}; expected a subset of {sorted(known)}")
        return cls(**d)

    def to_diffusers_config(self, timestep_spacing: str = "trailing") -> dict[str, Any]:
        """Keyword arguments for an equivalent ``diffusers.DDIMScheduler``.

        ``timestep_spacing`` is a sampling choice, not part of the schedule; it defaults to "trailing",
        the spacing that reaches t = T (recommended with a zero terminal SNR).
        """
        return {
            "num_train_timesteps": self.num_train_timesteps,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "beta_schedule": "scaled_linear",
            "prediction_type": self.prediction_type,
            "rescale_betas_zero_snr": self.zero_terminal_snr,
            "clip_sample": False,
            "set_alpha_to_one": True,
            "steps_offset": 0,
            "thresholding": False,
            "timestep_spacing": timestep_spacing,
        }
