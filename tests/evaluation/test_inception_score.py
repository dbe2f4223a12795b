"""Inception Score with 10 splits: same numbers as torchmetrics' InceptionScore on the same logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emu_video.errors import UserError
from emu_video.evaluation.inception_score import inception_score


class _Logits(torch.nn.Module):
    """torchmetrics' custom-feature hook: the 'images' we update with are already the classifier's logits."""

    def forward(self, x):
        return x


def _logits(n: int = 120, classes: int = 101, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, classes, generator=g, dtype=torch.float64) * 3


def test_matches_torchmetrics_inception_score():
    from torchmetrics.image.inception import InceptionScore

    logits = _logits()
    metric = InceptionScore(feature=_Logits(), splits=10)
    metric.update(logits)
    torch.manual_seed(7)
    tm_mean, tm_std = metric.compute()
    torch.manual_seed(7)  # torchmetrics permutes the rows with torch.randperm before splitting: replay it
    order = torch.randperm(logits.shape[0])
    mean, std = inception_score(logits[order].numpy(), splits=10, shuffle_seed=None)
    assert mean == pytest.approx(float(tm_mean), rel=1e-10)
    # torchmetrics reports the sample std (N-1), StyleGAN-V and torch-fidelity the population std (N).
    assert std * np.sqrt(10 / 9) == pytest.approx(float(tm_std), rel=1e-8)
    assert 1.5 < mean < 101


def test_probabilities_and_logits_give_the_same_score_and_shuffle_is_seeded():
    logits = _logits(n=50, classes=11, seed=1)
    from_logits = inception_score(logits, splits=5, shuffle_seed=42)
    from_probs = inception_score(logits.softmax(1), splits=5, shuffle_seed=42)
    assert from_logits == pytest.approx(from_probs, rel=1e-9)
    # one-hot predictions spread evenly over the classes: IS equals the number of classes in each split
    onehot = np.eye(10)[np.arange(100) % 10]
    assert inception_score(onehot, splits=10, shuffle_seed=None)[0] == pytest.approx(10.0)
    assert inception_score(np.eye(10)[np.arange(100) // 10], splits=10, shuffle_seed=None)[0] == pytest.approx(1.0)
    assert inception_score(np.eye(10)[np.arange(100) // 10], splits=10, shuffle_seed=42)[0] > 3.0
    with pytest.raises(UserError, match="at least 10 videos"):
        inception_score(onehot[:5], splits=10)
