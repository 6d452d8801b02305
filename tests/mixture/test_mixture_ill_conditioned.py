"""Log-densities for ill-conditioned covariances against an exact rational reference.

scikit-learn #29989 found GaussianMixture's log-probabilities off by up to 0.2 for nearly
singular covariances: a float64 Cholesky factor of Σ carries relative errors of about
cond(Σ)·ε in its small directions. fastdensity computes the precision factors in
double-double arithmetic and rounds them once, so what is left is the float64 evaluation of
‖(x − μ) U‖², with errors of about √cond(Σ)·ε.

The reference is exact: Σ, μ and x are taken as the rationals their float64 values are, Σ is
factored LDLᵀ in rational arithmetic, and only the final logarithms are rounded.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fastdensity.mixture._gaussian_params import compute_precision_cholesky
from fastdensity.mixture._mixture_cpu import gmm_log_prob

EPS = np.finfo(np.float64).eps


def exact_log_density(x, mu, cov):
    """log N(x | μ, Σ) from exact rational arithmetic (LDLᵀ), rounded at the end."""
    d = len(mu)
    A = [[Fraction(float(cov[i, j])) for j in range(d)] for i in range(d)]
    L = [[Fraction(0)] * d for _ in range(d)]
    D = [Fraction(0)] * d
    for j in range(d):
        D[j] = A[j][j] - sum(L[j][k] ** 2 * D[k] for k in range(j))
        L[j][j] = Fraction(1)
        for i in range(j + 1, d):
            L[i][j] = (A[i][j] - sum(L[i][k] * L[j][k] * D[k] for k in range(j))) / D[j]
    r = [Fraction(float(x[i])) - Fraction(float(mu[i])) for i in range(d)]
    z = []
    for i in range(d):
        z.append(r[i] - sum(L[i][k] * z[k] for k in range(i)))
    quad = sum(z[i] ** 2 / D[i] for i in range(d))
    log_det = math.fsum(math.log(Di.numerator) - math.log(Di.denominator) for Di in D)
    return -0.5 * (d * math.log(2 * math.pi) + log_det) - 0.5 * float(quad)


def ill_conditioned_case(kind, d, log_kappa, scale_exp, seed):
    rng = np.random.default_rng(seed)
    if kind == "eigen":
        Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        lam = np.logspace(0.0, -log_kappa, d)
        cov = (Q * lam) @ Q.T
    else:  # nearly collinear features, as in #29989's examples
        rank = max(1, d // 2)
        B = rng.normal(size=(d, rank))
        cov = B @ B.T + 10.0 ** (-log_kappa) * np.diag(rng.uniform(0.5, 1.5, size=d))
    cov = 10.0**scale_exp * 0.5 * (cov + cov.T)
    mu = rng.normal(scale=10.0 ** (scale_exp / 2) * 3, size=d)
    lam, vec = np.linalg.eigh(cov)
    # points from the distribution and a few standard deviations out
    z = rng.normal(size=(4, d)) * np.array([1.0, 1.0, 3.0, 10.0])[:, None]
    X = mu + (z * np.sqrt(np.maximum(lam, 0.0))) @ vec.T
    return cov, mu, X


@given(
    kind=st.sampled_from(["eigen", "collinear"]),
    d=st.integers(1, 6),
    log_kappa=st.floats(0.0, 12.0),
    scale_exp=st.integers(-4, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_log_density_matches_exact_reference(kind, d, log_kappa, scale_exp, seed):
    cov, mu, X = ill_conditioned_case(kind, d, log_kappa, scale_exp, seed)
    assume(np.all(np.isfinite(X)) and np.linalg.eigvalsh(cov).min() > 0)
    kappa = np.linalg.cond(cov)
    assume(kappa < 1e13)
    U = compute_precision_cholesky(cov[None], "full")
    ours = gmm_log_prob(X, mu[None], U, "full")[:, 0]
    for x, value in zip(X, ours):
        reference = exact_log_density(x, mu, cov)
        tolerance = 1e-14 * d * (1.0 + math.sqrt(kappa)) * (1.0 + abs(reference))
        assert abs(value - reference) <= tolerance, (value, reference, kappa)


def test_sklearn_29989_example():
    """The first falsifying example of #29989 (7 features, nearly singular), at the mean."""
    cov = np.array([
        [156.25637361, -31.26969455, 12.40439959, -31.24564618, -31.22989933, -31.24225165, -31.2688804],
        [-31.26969455, 6.33006684, -2.20457805, 6.2198964, 6.16861271, 6.20884123, 6.34227887],
        [12.40439959, -2.20457805, 2.43400622, -2.56530348, -2.80150635, -2.61622149, -2.21679021],
        [-31.24564618, 6.2198964, -2.56530348, 7.16206397, 5.80788728, 5.8481158, 6.20768424],
        [-31.22989933, 6.16861271, -2.80150635, 5.80788728, 7.34003101, 5.75696927, 6.15640055],
        [-31.24225165, 6.20884123, -2.61622149, 5.8481158, 5.75696927, 7.23169779, 6.19662906],
        [-31.2688804, 6.34227887, -2.21679021, 6.20768424, 6.15640055, 6.19662906, 6.36588918],
    ])
    mu = np.zeros(7)
    U = compute_precision_cholesky(cov[None], "full")
    ours = gmm_log_prob(np.zeros((1, 7)), mu[None], U, "full")[0, 0]
    assert ours == pytest.approx(exact_log_density(np.zeros(7), mu, cov), abs=1e-9)
