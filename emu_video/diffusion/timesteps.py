"""The timestep grids samplers walk: ``num_inference_steps`` of the ``num_train_timesteps`` training timesteps."""

from __future__ import annotations

import torch

__all__ = ["SPACINGS", "ddim_timesteps"]

SPACINGS = ("trailing", "leading", "linspace")


def ddim_timesteps(
    num_inference_steps: int, num_train_timesteps: int = 1000, spacing: str = "trailing"
) -> torch.Tensor:
    """The descending grid of ``num_inference_steps`` training timesteps to evaluate.

    With N = ``num_train_timesteps`` and n = ``num_inference_steps`` (rounding is half-to-even):

    * ``"trailing"``: round(N - i * N / n) - 1 for i = 0..n-1; starts at N - 1 (pure noise).
    * ``"leading"``:  (n - 1 - i) * (N // n); ends at 0, may start well below N - 1.
    * ``"linspace"``: round of n evenly spaced points from N - 1 down to 0.

    These equal ``diffusers.DDIMScheduler.set_timesteps`` with ``steps_offset=0``. (For a few values of n,
    e.g. 61 or 103 with N = 1000, diffusers' "trailing" grid comes out one entry too long, ending in an
    invalid -1; here the grid always has exactly n entries, which equal diffusers' first n.)
    """
    n, big_n = num_inference_steps, num_train_timesteps
    if isinstance(big_n, bool) or int(big_n) != big_n or big_n < 1:
        raise ValueError(f"num_train_timesteps must be a positive integer, got {big_n!r}")
    if isinstance(n, bool) or int(n) != n or not 1 <= n <= big_n:
        raise ValueError(
            f"num_inference_steps must be an integer from 1 to num_train_timesteps ({big_n}), got {n!r}"
        )
    n, big_n = int(n), int(big_n)
    i = torch.arange(n, dtype=torch.float64)
    if spacing == "trailing":
        # Points N, N - N/n, N - 2N/n, ... evaluated the way numpy's arange does (start + i * delta,
        # delta being the float64 difference of the first two points), so that points that land on
        # a .5 round exactly as in diffusers.
        start = float(big_n)
        delta = (start - big_n / n) - start
        ts = torch.round(start + i * delta) - 1
    elif spacing == "leading":
        ts = (i * (big_n // n)).flip(0)
    elif spacing == "linspace":
        if n == 1:
            ts = torch.zeros(1, dtype=torch.float64)
        else:
            points = i * ((big_n - 1) / (n - 1))
            points[-1] = big_n - 1
            ts = torch.round(points).flip(0)
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}; expected one of {SPACINGS}")
    return ts.to(torch.long)
