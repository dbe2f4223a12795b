"""Inception Score over class probabilities: exp(E_x KL(p(y|x) || p(y))), averaged over splits.

Video IS uses the UCF-101 C3D classifier on 16-frame clips and 10 splits (TGAN-v2, StyleGAN-V, Make-A-Video,
Emu Video). Rows are shuffled with `np.random.RandomState(seed)` first, as StyleGAN-V (seed 42) and
torch-fidelity (seed 2020) do: unshuffled, a class-by-class generation order would put few classes in each
split and lower the score.
"""

from __future__ import annotations

import numpy as np
import torch

from emu_video.errors import UserError


def as_probabilities(outputs) -> torch.Tensor:
    """float64 (N, C) probabilities: the outputs themselves if they already are (StyleGAN-V's C3D returns
    softmax outputs), else their softmax (logits)."""
    x = torch.as_tensor(np.asarray(outputs), dtype=torch.float64)
    if x.ndim != 2:
        raise UserError(f"class outputs must be (N, C), got {tuple(x.shape)}")
    if (x >= 0).all() and torch.allclose(x.sum(1), torch.ones(x.shape[0], dtype=x.dtype), atol=1e-3):
        return x / x.sum(1, keepdim=True)
    return x.softmax(1)


def inception_score(outputs, splits: int = 10, shuffle_seed: int | None = 42) -> tuple[float, float]:
    """(mean, std) of the per-split scores; split i holds rows [i*N//splits, (i+1)*N//splits)."""
    p = as_probabilities(outputs)
    n = p.shape[0]
    if n < splits:
        raise UserError(f"Inception Score with {splits} splits needs at least {splits} videos, got {n}")
    if shuffle_seed is not None:
        p = p[torch.from_numpy(np.random.RandomState(shuffle_seed).permutation(n))]
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(0, keepdim=True)
        kl = torch.special.xlogy(part, part) - torch.special.xlogy(part, marginal)
        scores.append(kl.sum(1).mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))
