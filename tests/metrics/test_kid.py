"""KID against a brute-force NumPy oracle, its unbiasedness, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity.metrics import kid, polynomial_mmd2


def brute_mmd2(X, Y, degree=3, gamma=None, coef0=1.0):
    """Oracle: the U-statistic written pair by pair."""
    m, n, d = len(X), len(Y), X.shape[1]
    gamma = 1.0 / d if gamma is None else gamma

    def k(a, b):
        return (gamma * float(np.dot(a, b)) + coef0) ** degree

    xx = sum(k(X[i], X[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(Y[i], Y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(X[i], Y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("degree, gamma, coef0", [(3, None, 1.0), (2, 0.5, 0.0), (1, None, 2.0)])
def test_mmd2_matches_brute_force(degree, gamma, coef0):
    rng = np.random.default_rng(degree)
    X, Y = rng.standard_normal((25, 4)), rng.standard_normal((18, 4)) + 0.3
    assert polynomial_mmd2(X, Y, degree, gamma, coef0) == pytest.approx(brute_mmd2(X, Y, degree, gamma, coef0),
                                                                        rel=1e-10, abs=1e-12)


def test_kid_matches_brute_force_on_the_same_subsets():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((35, 3)) * 1.3
    result = kid(X, Y, subsets=5, subset_size=12, random_state=7)
    draw = np.random.default_rng(7)  # the documented draw: features_real then features_fake, per subset
    expected = []
    for _ in range(5):
        ix = draw.choice(40, 12, replace=False)
        iy = draw.choice(35, 12, replace=False)
        expected.append(brute_mmd2(X[ix], Y[iy]))
    np.testing.assert_allclose(result.values, expected, rtol=1e-10, atol=1e-12)
    assert result.mean == pytest.approx(np.mean(expected), rel=1e-10, abs=1e-12)
    assert result.std == pytest.approx(np.std(expected), rel=1e-9, abs=1e-12)


def test_unbiased_for_one_distribution():
    # Over independent replications the estimate averages to 0 (a biased V-statistic would not).
    rng = np.random.default_rng(2)
    unbiased, biased = [], []
    for _ in range(300):
        X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 3))
        unbiased.append(polynomial_mmd2(X, Y))
        kxx, kyy, kxy = ((A @ B.T / 3 + 1) ** 3 for A, B in ((X, X), (Y, Y), (X, Y)))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    se = np.std(unbiased, ddof=1) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 4 * se
    assert np.mean(biased) > 4 * np.std(biased, ddof=1) / np.sqrt(len(biased))  # the test has power


def test_different_distributions_score_clearly_positive():
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((400, 8)), rng.standard_normal((400, 8)) * 1.5 + 0.5
    same = kid(X, rng.standard_normal((400, 8)), subsets=20, subset_size=100, random_state=0)
    different = kid(X, Y, subsets=20, subset_size=100, random_state=0)
    assert different.mean > 10 * different.std / np.sqrt(20)
    assert different.mean > 20 * abs(same.mean)


def test_seed_reproducible_and_values_shape():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((60, 5)), rng.standard_normal((70, 5))
    a = kid(X, Y, subsets=7, subset_size=20, random_state=11)
    b = kid(X, Y, subsets=7, subset_size=20, random_state=11)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.values.shape == (7,)


def test_errors():
    X = np.zeros((10, 3))
    with pytest.raises(ValueError, match="subset_size = 11 is larger than the feature sets"):
        kid(X, X, subset_size=11)
    with pytest.raises(ValueError, match="subsets must be a positive integer"):
        kid(X, X, subsets=0, subset_size=5)
    with pytest.raises(ValueError, match="degree must be a positive integer"):
        kid(X, X, subset_size=5, degree=0)
    with pytest.raises(ValueError, match="gamma must be a positive finite number or None"):
        kid(X, X, subset_size=5, gamma=-1.0)
    with pytest.raises(ValueError, match="they must match"):
        kid(X, np.zeros((10, 4)), subset_size=5)
    with pytest.raises(ValueError, match="features_fake contains NaN"):
        kid(X, np.full((10, 3), np.nan), subset_size=5)


def test_torch_cpu_tensors_match_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((50, 6)), rng.standard_normal((50, 6)) + 0.2
    expected = kid(X, Y, subsets=4, subset_size=30, random_state=3)
    got = kid(torch.from_numpy(X).float(), torch.from_numpy(Y).float(), subsets=4, subset_size=30, random_state=3)
    X32, Y32 = X.astype(np.float32).astype(np.float64), Y.astype(np.float32).astype(np.float64)
    ref = kid(X32, Y32, subsets=4, subset_size=30, random_state=3)
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_cuda_inputs_match_cpu():
    import cupy

    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((200, 16)), rng.standard_normal((150, 16)) + 0.1
    expected = kid(X, Y, subsets=5, subset_size=100, random_state=0)
    got = kid(cupy.asarray(X), cupy.asarray(Y), subsets=5, subset_size=100, random_state=0)
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-9, atol=1e-12)
    torch = pytest.importorskip("torch")
    got = kid(torch.from_numpy(X).cuda(), torch.from_numpy(Y).cuda(), subsets=5, subset_size=100, random_state=0)
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-9, atol=1e-12)
