"""bandwidth="lscv", "lscv_diag", "mlcv", "mlcv_diag": the criteria against a brute-force oracle,
their gradients against finite differences, the 1-D optima against an independent scalar search and
the existing "cv" rule, diagonal vs full, weights, ties and the estimator hook."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.stats import multivariate_normal

from fastdensity import KernelDensity
from fastdensity.kde._bandwidth import DEFAULT_CV_FACTORS
from fastdensity.kde._bandwidth_lscv import CV_MATRIX_RULES, _Pairs, cv_bandwidth_matrix
from fastdensity.kde._kernels import kernel_coordinate_variance


def _brute(X, w, H):
    """(LSCV, MLCV) from n × n matrices of gaussian densities (scipy's)."""
    n, d = X.shape
    U = (X[:, None, :] - X[None, :, :]).reshape(-1, d)
    K2 = multivariate_normal(np.zeros(d), 2 * H).pdf(U).reshape(n, n)
    K = multivariate_normal(np.zeros(d), H).pdf(U).reshape(n, n)
    np.fill_diagonal(K, 0.0)
    loo = K @ w / (1 - w)
    return w @ K2 @ w - 2 * w @ loo, w @ np.log(loo)


def test_criteria_and_gradients_equal_oracles():
    rng = np.random.default_rng(70)
    X = rng.standard_normal((50, 3))
    w = rng.uniform(0.5, 2.0, 50)
    w /= w.sum()
    H = np.array([[0.3, 0.1, 0.0], [0.1, 0.2, 0.05], [0.0, 0.05, 0.4]])
    L = np.linalg.cholesky(H)
    pairs = _Pairs(X, w)
    lscv, mlcv = _brute(X, w, H)
    assert pairs.lscv(L)[0] == pytest.approx(lscv, rel=1e-12)
    assert pairs.mlcv(L)[0] == pytest.approx(mlcv, rel=1e-12)
    for criterion in (pairs.lscv, pairs.mlcv):
        G = criterion(L)[1]
        for a, b in zip(*np.tril_indices(3)):
            E = np.zeros((3, 3))
            E[a, b] = 1e-6
            numeric = (criterion(L + E)[0] - criterion(L - E)[0]) / 2e-6
            # central differences: error O(step²) ≈ 1e-12 relative plus rounding ε|f|/step ≈ 1e-10
            assert G[a, b] == pytest.approx(numeric, rel=1e-6, abs=1e-8 * abs(criterion(L)[0]))


@pytest.mark.parametrize("rule", ["lscv", "mlcv"])
def test_one_dimensional_optimum_equals_an_independent_scalar_search(rule):
    x = np.random.default_rng(71).gamma(2.0, 1.0, 150)
    w = np.full(150, 1 / 150)

    def criterion(log_h):
        lscv, mlcv = _brute(x[:, None], w, np.array([[math.exp(2 * log_h)]]))
        return lscv if rule == "lscv" else -mlcv

    ref = math.exp(minimize_scalar(criterion, bounds=(-4, 1), method="bounded", options={"xatol": 1e-9}).x)
    H = cv_bandwidth_matrix(x, None, rule)
    # Both optimisers stop where the criterion is flat to ~1e-10 relative: a curvature-limited
    # agreement of about √1e-10 ≈ 1e-5 in log h.
    assert math.sqrt(H[0, 0]) == pytest.approx(ref, rel=1e-4)


def test_one_dimensional_mlcv_agrees_with_the_cv_grid():
    # "cv" maximises the same likelihood over a geometric grid of factors of Scott's bandwidth:
    # the continuous optimum lies within half a grid step of the grid's best.
    x = np.random.default_rng(72).standard_normal(400)
    h_cv = KernelDensity(bandwidth="cv").fit(x[:, None]).bandwidth_
    h_ml = math.sqrt(cv_bandwidth_matrix(x, None, "mlcv")[0, 0])
    step = DEFAULT_CV_FACTORS[1] / DEFAULT_CV_FACTORS[0]
    assert abs(math.log(h_ml / h_cv)) <= 0.5 * math.log(step) + 1e-12


@pytest.mark.parametrize("rule", ["lscv", "mlcv"])
def test_diagonal_and_full_matrices(rule):
    rng = np.random.default_rng(73)
    X = rng.standard_normal((300, 2)) @ np.array([[1.0, 0.0], [0.8, 0.6]]).T
    H_full = cv_bandwidth_matrix(X, None, rule)
    H_diag = cv_bandwidth_matrix(X, None, rule + "_diag")
    assert H_diag[0, 1] == 0.0 and H_diag[1, 0] == 0.0 and np.all(np.diag(H_diag) > 0)
    assert H_full[0, 1] > 0  # follows the data's positive correlation
    np.testing.assert_allclose(H_full, H_full.T, rtol=0, atol=0)
    # The full optimum is at least as good as the diagonal one on the full criterion.
    pairs = _Pairs(X - X.mean(axis=0), np.full(300, 1 / 300))
    sign = 1 if rule == "lscv" else -1
    value = getattr(pairs, rule)
    assert sign * value(np.linalg.cholesky(H_full))[0] <= sign * value(np.linalg.cholesky(H_diag))[0] + 1e-12


def test_normal_data_optima():
    # Cross-validated matrices converge slowly (LSCV's relative error is O(n^(−d/(2d+8))), ≈ 0.34 at
    # n = 600, d = 2, and its criterion is flat with several minima, Wand & Jones 1995 §4.7): the
    # likelihood optimum is within a factor 2 of the normal-reference one; the LSCV optimum is at
    # least as low as every multiple of the normal-reference matrix (the optimiser's job).
    rng = np.random.default_rng(74)
    X = rng.standard_normal((600, 2)) @ np.array([[1.0, 0.0], [0.5, 0.8]]).T
    H_ns = (4 / (600 * 4)) ** (2 / 6) * np.cov(X.T)
    ratio = np.linalg.eigvals(np.linalg.solve(H_ns, cv_bandwidth_matrix(X, None, "mlcv"))).real
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
    pairs = _Pairs(X - X.mean(axis=0), np.full(600, 1 / 600))
    best = pairs.lscv(np.linalg.cholesky(cv_bandwidth_matrix(X, None, "lscv")))[0]
    assert all(best <= pairs.lscv(np.linalg.cholesky(c * H_ns))[0] for c in np.geomspace(0.2, 5.0, 15))


def test_weights_and_estimator_hook():
    rng = np.random.default_rng(75)
    X = rng.standard_normal((120, 2))
    H = cv_bandwidth_matrix(X, None, "mlcv")
    np.testing.assert_array_equal(cv_bandwidth_matrix(X, np.full(120, 3.0), "mlcv"), H)
    w = rng.uniform(0.2, 2.0, 120)
    np.testing.assert_allclose(cv_bandwidth_matrix(X, 5 * w, "lscv"), cv_bandwidth_matrix(X, w, "lscv"), rtol=1e-6)
    for rule in CV_MATRIX_RULES:
        kde = KernelDensity(bandwidth=rule, kernel="epanechnikov").fit(X, sample_weight=w)
        np.testing.assert_allclose(kde.bandwidth_matrix_ * kernel_coordinate_variance("epanechnikov", 2),
                                   cv_bandwidth_matrix(X, w, rule), rtol=1e-14)


def test_errors_name_the_problem():
    X = np.repeat(np.random.default_rng(76).standard_normal((30, 2)), 2, axis=0)
    with pytest.raises(ValueError, match=r'bandwidth "lscv": the data have duplicated points'):
        cv_bandwidth_matrix(X, None, "lscv")
    with pytest.raises(ValueError, match=r"rule must be one of \('lscv', 'lscv_diag', 'mlcv', 'mlcv_diag'\)"):
        cv_bandwidth_matrix(X, None, "ucv")
    with pytest.raises(ValueError, match=r"in 3 dimensions needs at least 5 points"):
        cv_bandwidth_matrix(np.random.default_rng(77).standard_normal((4, 3)), None, "mlcv")
    with pytest.raises(ValueError, match="covariance is singular"):
        x = np.random.default_rng(78).standard_normal((40, 1))
        cv_bandwidth_matrix(np.hstack([x, 2 * x]), None, "lscv")
