"""Fréchet distance: agrees with the scipy.linalg.sqrtm formula (StyleGAN-V / cd-fvd) and torchmetrics' FID maths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emu_video.evaluation.frechet import (
    FeatureStats,
    frechet_distance,
    frechet_from_stats,
)


def _scipy_fd(mu1, s1, mu2, s2) -> float:
    import scipy.linalg

    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.real(np.square(mu1 - mu2).sum() + np.trace(s1 + s2 - 2 * root)))


def _features(seed: int, n: int, d: int, shift: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ mix + shift).astype(np.float32)


@pytest.mark.parametrize("n,d", [(200, 24), (30, 48)])  # full-rank and rank-deficient covariances
def test_matches_scipy_sqrtm_and_torchmetrics(n, d):
    from torchmetrics.image.fid import _compute_fid

    a, b = _features(0, n, d, 0.0), _features(1, n, d, 0.3)
    sa, sb = FeatureStats(), FeatureStats()
    for chunk in np.array_split(a, 3):  # streamed in batches, as extraction does
        sa.add(chunk)
    sb.add(torch.from_numpy(b))
    mu1, s1 = sa.mean_cov()
    mu2, s2 = sb.mean_cov()
    np.testing.assert_allclose(mu1, a.astype(np.float64).mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s1, np.cov(a.astype(np.float64), rowvar=False, bias=True), rtol=1e-9, atol=1e-12)

    ours = frechet_from_stats(sa, sb)
    reference = _scipy_fd(mu1, s1, mu2, s2)
    tm = float(_compute_fid(*(torch.from_numpy(x) for x in (mu1, s1, mu2, s2))))
    assert ours > 1.0
    # Rank-deficient products make sqrtm's iterations (and eigvals' complex parts) noisier than our symmetric form.
    tol = 1e-9 if n > d else 1e-6
    assert ours == pytest.approx(reference, rel=tol)
    assert ours == pytest.approx(tm, rel=tol)


def test_identical_sets_give_zero_and_shapes_are_checked():
    a = _features(3, 100, 16, 0.0)
    s = FeatureStats()
    s.add(a)
    mu, cov = s.mean_cov()
    assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-9
    from emu_video.errors import UserError

    with pytest.raises(UserError, match="do not match"):
        frechet_distance(mu, cov, mu[:3], cov[:3, :3])
    with pytest.raises(UserError, match="at least 2"):
        one = FeatureStats()
        one.add(a[:1])
        one.mean_cov()
