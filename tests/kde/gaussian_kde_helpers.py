"""Data, oracles and checks shared by the gaussian_kde tests (tests/kde/test_gaussian_kde*.py)."""

from __future__ import annotations

import re

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

RTOL = 1e-12
# scipy's message for singular data (ours begins with it), as a regular expression
SCIPY_SINGULAR = re.escape(
    "The data appears to lie in a lower-dimensional subspace of the space in which it is "
    "expressed. This has resulted in a singular data covariance matrix, which cannot be treated "
    "using the algorithms implemented in `gaussian_kde`. Consider performing principal component "
    "analysis / dimensionality reduction and using `gaussian_kde` with the transformed data."
)
N = 80
BW_METHODS = [None, "scott", "silverman", 0.3, lambda kde: 0.5 * kde.silverman_factor()]
BW_IDS = ["none", "scott", "silverman", "scalar", "callable"]


def _data(d, weighted, seed=0, n=N):
    rng = np.random.default_rng(seed + 10 * d)
    mix = rng.standard_normal((d, d)) + 2 * np.eye(d)  # correlated dimensions
    x = mix @ rng.standard_normal((d, n)) + np.arange(d)[:, None]
    x[:, : n // 4] += 3.0  # a second mode
    w = rng.uniform(0.1, 2.0, n) if weighted else None
    return x, w


def _points(d, m=40, seed=1, scale=3.0):
    return np.random.default_rng(seed).standard_normal((d, m)) * scale


def _close(a, b, rtol=RTOL, atol=0.0):
    """assert_allclose, also with per-element ``rtol``/``atol`` arrays (which NumPy's own message
    formatting refuses)."""
    if np.ndim(rtol) == 0 and np.ndim(atol) == 0:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
        return
    a, b = np.asarray(a), np.asarray(b)
    allowed = np.asarray(atol) + np.asarray(rtol) * np.abs(b)
    excess = np.abs(a - b) - allowed
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert np.all(excess <= 0), (
        f"{np.count_nonzero(excess > 0)} of {excess.size} elements beyond their allowance; worst at "
        f"{worst}: {a[worst]!r} vs {b[worst]!r}, allowed {np.broadcast_to(allowed, excess.shape)[worst]:.3g}"
    )


def _oracle_logpdf(dataset, weights, covariance, points):
    """log Σ_j w_j N(p − x_j; 0, covariance) in log space with NumPy, no fastdensity code."""
    d = dataset.shape[0]
    chol = np.linalg.cholesky(covariance)
    diff = points[:, :, None] - dataset[:, None, :]  # (d, m, n)
    z = linalg.solve_triangular(chol, diff.reshape(d, -1), lower=True).reshape(diff.shape)
    log_k = -0.5 * np.sum(z * z, axis=0)
    log_norm = -0.5 * d * np.log(2 * np.pi) - np.sum(np.log(np.diag(chol)))
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    return logsumexp(log_k + log_w[None, :], axis=1) + log_norm


def _check_attributes(ours, ref):
    assert ours.d == ref.d and ours.n == ref.n
    _close(ours.neff, ref.neff)
    _close(ours.weights, ref.weights)
    _close(ours.factor, ref.factor)
    _close(ours.covariance, ref.covariance)
    _close(ours.inv_cov, ref.inv_cov)
    _close(ours.cho_cov, ref.cho_cov)
    _close(ours.log_det, ref.log_det)
    _close(ours.covariance_factor(), ref.covariance_factor())
    _close(ours.scotts_factor(), ref.scotts_factor())
    _close(ours.silverman_factor(), ref.silverman_factor())


def _check_density(ours, ref, points, aliases=False):
    expected = ref.evaluate(points)
    _close(ours.evaluate(points), expected)
    if aliases:
        _close(ours(points), expected)
        _close(ours.pdf(points), expected)
    # log densities near 0 make a relative comparison meaningless: add a tiny absolute slack.
    _close(ours.logpdf(points), ref.logpdf(points), atol=1e-12)
