"""Feature statistics and the Fréchet distance between two Gaussians, in float64.

    d^2 = |mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2))

tr((S_1 S_2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric positive
semi-definite matrix S_1^(1/2) S_2 S_1^(1/2) (same spectrum as S_1 S_2), so no complex parts or
`scipy.linalg.sqrtm` iterations are involved. Covariances divide by N as StyleGAN-V and cd-fvd do (their
`FeatureStats`), so FVD numbers are comparable with theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from emu_video.errors import UserError


@dataclass
class FeatureStats:
    """Running float64 sums of features: mean and covariance without keeping every feature in memory."""

    num: int = 0
    sum: np.ndarray | None = None
    outer: np.ndarray | None = None
    features: list[np.ndarray] = field(default_factory=list)
    keep_features: bool = False

    def add(self, x) -> None:
        x = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (N, D), got {x.shape}")
        if self.sum is None:
            self.sum = np.zeros(x.shape[1])
            self.outer = np.zeros((x.shape[1], x.shape[1]))
        self.num += x.shape[0]
        self.sum += x.sum(0)
        self.outer += x.T @ x
        if self.keep_features:
            self.features.append(x)

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.num < 2:
            raise UserError(f"need at least 2 videos for feature statistics, got {self.num}")
        mean = self.sum / self.num
        return mean, self.outer / self.num - np.outer(mean, mean)

    def to_dict(self) -> dict:
        return {"num": self.num, "sum": self.sum, "outer": self.outer}

    @classmethod
    def from_arrays(cls, num: int, sum: np.ndarray, outer: np.ndarray) -> "FeatureStats":
        return cls(num=int(num), sum=np.asarray(sum, np.float64), outer=np.asarray(outer, np.float64))


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64."""
    mu1, mu2, s1, s2 = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.numel(), mu1.numel()):
        raise UserError(f"feature statistics do not match: means {tuple(mu1.shape)}/{tuple(mu2.shape)}, "
                        f"covariances {tuple(s1.shape)}/{tuple(s2.shape)}")
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    d2 = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * trace_sqrt
    return float(d2)


def frechet_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    mu1, s1 = a.mean_cov()
    mu2, s2 = b.mean_cov()
    return frechet_distance(mu1, s1, mu2, s2)
