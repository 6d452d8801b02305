"""Inception Score: its two extreme values, a direct formula, validation, torch inputs."""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity.metrics import inception_score


def direct_is(P, splits):
    """Oracle: exp of the mean KL per split, written term by term (0 log 0 = 0)."""
    n, c = P.shape
    scores = []
    for s in range(splits):
        part = P[s * n // splits:(s + 1) * n // splits]
        py = part.mean(0)
        kl = [sum(p[j] * np.log(p[j] / py[j]) for j in range(c) if p[j] > 0) for p in part]
        scores.append(np.exp(np.mean(kl)))
    return np.mean(scores), np.std(scores)


def test_uniform_predictions_score_one():
    result = inception_score(np.full((60, 7), 1 / 7), splits=3)
    np.testing.assert_allclose(result.values, 1.0, rtol=1e-12)
    assert result.std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("classes", [2, 10])
def test_confident_balanced_predictions_score_the_class_count(classes):
    P = np.eye(classes)[np.arange(20 * classes) % classes]
    result = inception_score(P, splits=4)
    np.testing.assert_allclose(result.values, classes, rtol=1e-12)


@pytest.mark.parametrize("splits", [1, 3, 10])
def test_matches_direct_formula(splits):
    rng = np.random.default_rng(splits)
    P = rng.dirichlet(np.full(6, 0.3), size=103)
    P[0] = [1.0, 0, 0, 0, 0, 0]  # exact zeros
    result = inception_score(P, splits=splits)
    mean, std = direct_is(P, splits)
    assert result.mean == pytest.approx(mean, rel=1e-12)
    assert result.std == pytest.approx(std, rel=1e-9, abs=1e-12)
    assert 1.0 <= result.mean <= 6.0


def test_validation():
    with pytest.raises(ValueError, match="must be non-negative"):
        inception_score(np.array([[1.2, -0.2], [0.5, 0.5]]), splits=1)
    with pytest.raises(ValueError, match="not logits"):
        inception_score(np.array([[2.0, 1.0], [0.5, 0.5]]), splits=1)
    with pytest.raises(ValueError, match=r"splits must be an integer in \[1, 5\]; got 6"):
        inception_score(np.full((5, 2), 0.5), splits=6)
    with pytest.raises(ValueError, match="contains NaN"):
        inception_score(np.array([[np.nan, 1.0]]), splits=1)
    with pytest.raises(ValueError, match="2-D array"):
        inception_score(np.full(5, 0.2), splits=1)


def test_torch_cpu_probabilities():
    torch = pytest.importorskip("torch")
    P = torch.softmax(torch.randn(90, 5, generator=torch.Generator().manual_seed(0)), dim=1)
    expected = inception_score(P.double().numpy(), splits=3)
    got = inception_score(P, splits=3)
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-6)
