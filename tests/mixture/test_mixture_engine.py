"""The Numba engine against brute-force NumPy: the fused E-step statistics, the log-densities,
the precision factors, k-means++ seeding, and independence from the thread count.

All engine calls share one compiled specialisation (the covariance family and the mode are
runtime values), so this file compiles little.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import cholesky, solve_triangular
from scipy.special import logsumexp

import fastdensity
from fastdensity.mixture import _kmeans_plusplus_cpu as kpp
from fastdensity.mixture import _mixture_cpu as engine
from fastdensity.mixture._cholesky_dd import precision_cholesky_full
from mixture_helpers import COVARIANCE_TYPES, max_rel


def random_model(rng, k, d, covariance_type):
    """(means, precision factors in scikit-learn's layout, log weights)."""
    means = rng.normal(scale=2.0, size=(k, d))
    log_w = np.log(rng.dirichlet(np.ones(k)))
    if covariance_type in ("full", "tied"):
        def one():
            A = rng.normal(size=(d, d))
            cov = A @ A.T / d + 0.5 * np.eye(d)
            return solve_triangular(cholesky(cov, lower=True), np.eye(d), lower=True).T
        prec_chol = np.stack([one() for _ in range(k)]) if covariance_type == "full" else one()
    elif covariance_type == "diag":
        prec_chol = rng.uniform(0.5, 2.0, size=(k, d))
    else:
        prec_chol = rng.uniform(0.5, 2.0, size=k)
    return means, prec_chol, log_w


def reference_log_prob(X, means, prec_chol, covariance_type):
    """log N(x | μ_c, (U Uᵀ)⁻¹), the obvious way: (n, k)."""
    k, d = means.shape
    out = np.empty((X.shape[0], k))
    for c in range(k):
        if covariance_type == "full":
            U = prec_chol[c]
        elif covariance_type == "tied":
            U = prec_chol
        elif covariance_type == "diag":
            U = np.diag(prec_chol[c])
        else:
            U = prec_chol[c] * np.eye(d)
        y = (X - means[c]) @ U
        out[:, c] = -0.5 * d * np.log(2 * np.pi) + np.sum(np.log(np.diag(U))) - 0.5 * np.sum(y * y, axis=1)
    return out


def reference_stats(X, w, means, lp, covariance_type, shift):
    resp = np.exp(lp - logsumexp(lp, axis=1)[:, None]) * w[:, None]
    R = resp.sum(axis=0)
    Sx = np.stack([resp[:, c] @ (X - means[c]) for c in range(len(means))])
    if covariance_type == "full":
        Sxx = np.stack([(resp[:, c, None] * (X - means[c])).T @ (X - means[c]) for c in range(len(means))])
    elif covariance_type == "tied":
        Sxx = (w[:, None] * (X - shift)).T @ (X - shift)
    else:
        Sxx = np.stack([resp[:, c] @ (X - means[c]) ** 2 for c in range(len(means))])
    return R, Sx, Sxx


# n: enough chunks for the parallel driver, ending in a partial block; a few chunks (serial);
# one block. d = 1 (3 padding features), 5 and 6.
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("n, d, k", [(engine.CHUNK * engine.PARALLEL_MIN_CHUNKS + 37, 5, 4),
                                     (engine.CHUNK * 2 + 300, 1, 2), (129, 6, 7)])
def test_estep_against_numpy(covariance_type, n, d, k):
    rng = np.random.default_rng(n + d + k)
    X = rng.normal(size=(n, d)) * 2
    w = rng.uniform(0, 3, size=n)
    means, prec_chol, log_w = random_model(rng, k, d, covariance_type)
    shift = X.mean(axis=0)
    lp = reference_log_prob(X, means, prec_chol, covariance_type) + log_w

    np.testing.assert_allclose(engine.gmm_log_prob(X, means, prec_chol, covariance_type, log_w), lp,
                               rtol=1e-13, atol=1e-12)
    lpn, R, Sx, Sxx = engine.gmm_estep(X, w, means, prec_chol, log_w, covariance_type, shift=shift)
    np.testing.assert_allclose(lpn, logsumexp(lp, axis=1), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(engine.gmm_log_prob_norm(X, means, prec_chol, log_w, covariance_type),
                               logsumexp(lp, axis=1), rtol=1e-13, atol=1e-12)
    R_ref, Sx_ref, Sxx_ref = reference_stats(X, w, means, lp, covariance_type, shift)
    assert max_rel(R, R_ref) < 1e-13
    assert max_rel(Sx, Sx_ref) < 1e-12
    assert max_rel(Sxx, Sxx_ref) < 1e-13
    if covariance_type in ("full", "tied"):
        np.testing.assert_array_equal(Sxx, np.swapaxes(Sxx, -1, -2))  # symmetric


def test_unit_weights_equal_no_weights():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 3))
    means, prec_chol, log_w = random_model(rng, 3, 3, "full")
    a = engine.gmm_estep(X, None, means, prec_chol, log_w, "full")
    b = engine.gmm_estep(X, np.ones(500), means, prec_chol, log_w, "full")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_far_point_has_finite_log_density():
    """A point 1e3 standard deviations away: finite log-densities and normaliser (log space)."""
    means = np.zeros((2, 2))
    prec_chol = np.ones((2, 2))
    X = np.array([[1e3, -1e3]])
    lpn = engine.gmm_log_prob_norm(X, means, prec_chol, np.log([0.5, 0.5]), "diag")
    expected = -np.log(2 * np.pi) - 1e6
    np.testing.assert_allclose(lpn, [expected], rtol=1e-14)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bit_identical_across_thread_counts(covariance_type):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(engine.CHUNK * 5 + 3, 4))
    w = rng.uniform(size=X.shape[0])
    means, prec_chol, log_w = random_model(rng, 5, 4, covariance_type)
    with fastdensity.threads(1):
        one = engine.gmm_estep(X, w, means, prec_chol, log_w, covariance_type)
    with fastdensity.threads(2):
        two = engine.gmm_estep(X, w, means, prec_chol, log_w, covariance_type)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_serial_and_parallel_drivers_agree_bit_for_bit():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(engine.CHUNK * 3 + 11, 4))
    w = rng.uniform(size=X.shape[0])
    for covariance_type in COVARIANCE_TYPES:
        means, prec_chol, log_w = random_model(rng, 3, 4, covariance_type)
        family, m, U, muU, shift, cst = engine._prepare(means, prec_chol, log_w, covariance_type, None)
        outputs = []
        for driver in (engine._gmm_pass_serial, engine._gmm_pass_parallel):
            lpn = np.empty(X.shape[0])
            parts = (np.zeros((4, 3)), np.zeros((4, 3, m.shape[1])),
                     np.zeros((4, 3, m.shape[1], m.shape[1])) if family == 0 else
                     np.zeros((4, 1, m.shape[1], m.shape[1])) if family == 1 else np.zeros((4, 1, 3, m.shape[1])))
            driver(X, w, m, U, shift, muU, cst, family, engine.MODE_ESTEP, lpn, np.zeros((1, 1)), *parts,
                   engine._NO_LABELS, engine._NO_RESP)
            outputs.append((lpn,) + parts)
        for a, b in zip(*outputs):
            np.testing.assert_array_equal(a, b)


def test_rows_do_not_depend_on_their_neighbours():
    """Each row goes through the same padded-block arithmetic wherever it sits."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1000, 3))
    for covariance_type in COVARIANCE_TYPES:
        means, prec_chol, log_w = random_model(rng, 3, 3, covariance_type)
        full = engine.gmm_log_prob(X, means, prec_chol, covariance_type, log_w)
        part = engine.gmm_log_prob(X[317:421][::-1], means, prec_chol, covariance_type, log_w)
        np.testing.assert_array_equal(part, full[317:421][::-1])


def test_precision_cholesky_matches_float64_on_well_conditioned():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(4, 6, 6))
    cov = A @ np.swapaxes(A, 1, 2) + np.eye(6)
    U, ok = precision_cholesky_full(cov)
    assert ok.all()
    for c in range(4):
        ref = solve_triangular(cholesky(cov[c], lower=True), np.eye(6), lower=True).T
        assert max_rel(U[c], ref) < 1e-14
        np.testing.assert_allclose(U[c] @ U[c].T @ cov[c], np.eye(6), atol=1e-12)
    bad = cov.copy()
    bad[2] = np.diag([1.0, -1.0, 1.0, 1.0, 1.0, 1.0])
    _, ok = precision_cholesky_full(bad)
    np.testing.assert_array_equal(ok, [True, True, False, True])


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_picks_sklearn_rows(weighted):
    from sklearn.cluster import kmeans_plusplus

    rng = np.random.default_rng(8)
    X = rng.normal(size=(engine.CHUNK * engine.PARALLEL_MIN_CHUNKS + 500, 3))
    w = rng.uniform(size=X.shape[0]) if weighted else None
    for seed in range(3):
        _, expected = kmeans_plusplus(X, 6, random_state=seed, sample_weight=w)
        centres, got = kpp.kmeans_plusplus(X, 6, w, np.random.RandomState(seed))
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(centres, X[got])
