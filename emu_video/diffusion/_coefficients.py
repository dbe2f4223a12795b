"""Gathering alpha_bar at timesteps, shaped to broadcast over a batch of latents (internal helper)."""

from __future__ import annotations

from typing import Union

import torch

TimestepLike = Union[int, torch.Tensor]


def coef_dtype(device: torch.device) -> torch.dtype:
    """The dtype used to compute per-timestep coefficients: float64 where the device supports it."""
    return torch.float32 if device.type == "mps" else torch.float64


def alpha_bar_at(
    alphas_cumprod: torch.Tensor,
    t: TimestepLike,
    like: torch.Tensor,
    final_alpha_cumprod: float | None = None,
) -> torch.Tensor:
    """alpha_bar[t] as a high-precision tensor that broadcasts against ``like``.

    ``t`` is an int, a 0-dim tensor (one timestep for the whole batch) or a tensor of shape ``(B,)``
    (one per sample; ``like`` must then have batch size B). The result has shape ``()`` or
    ``(B, 1, ..., 1)`` with ``like.ndim`` dims.

    Timesteps must lie in ``[0, len(alphas_cumprod))``. If ``final_alpha_cumprod`` is given, negative
    timesteps map to it instead (the "previous" timestep of the last DDIM step).
    """
    device = like.device
    ac = alphas_cumprod.to(device=device, dtype=coef_dtype(device))
    t = torch.as_tensor(t, device=device)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise TypeError(f"timesteps must be integers, got dtype {t.dtype}")
    t = t.long()
    if t.ndim > 1:
        raise ValueError(f"timesteps must be a scalar or of shape (B,), got shape {tuple(t.shape)}")
    if t.ndim == 1 and like.ndim >= 1 and t.shape[0] not in (1, like.shape[0]):
        raise ValueError(
            f"got {t.shape[0]} timesteps for a batch of {like.shape[0]}; pass one per sample or a scalar"
        )
    if final_alpha_cumprod is None:
        out = ac[t]
    else:
        out = torch.where(t >= 0, ac[t.clamp(min=0)], ac.new_tensor(float(final_alpha_cumprod)))
    if out.ndim == 1:
        out = out.reshape(out.shape[0], *([1] * (like.ndim - 1)))
    return out
