"""The gamma and beta maximum-likelihood solvers against 50-digit mpmath references."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import digamma

from fastdensity.parametric._mle import beta_log_likelihood, beta_shapes_mle, gamma_shape_mle, gamma_statistic, log_minus_digamma

mpmath.mp.dps = 50


@pytest.mark.parametrize("k", [1e-4, 0.3, 1.0, 9.99, 10.0, 10.01, 37.5, 1e3, 1e8, 1e15])
def test_log_minus_digamma_is_accurate(k):
    reference = float(mpmath.log(k) - mpmath.digamma(k))
    assert log_minus_digamma(k) == pytest.approx(reference, rel=2e-15)


def test_log_minus_digamma_vectorised():
    k = np.array([0.5, 20.0, 1e6])
    np.testing.assert_allclose(log_minus_digamma(k), [log_minus_digamma(v) for v in k], rtol=0)


@given(log10_s=st.floats(-14, 4))
def test_gamma_shape_solves_its_equation(log10_s):
    s = 10.0**log10_s
    k = gamma_shape_mle(s)
    reference = mpmath.findroot(lambda t: mpmath.log(t) - mpmath.digamma(t) - s, (0.5 / s, 1.0 / s), solver="anderson")
    assert k == pytest.approx(float(reference), rel=1e-12)


def test_gamma_shape_rejects_a_non_positive_statistic():
    with pytest.raises(ValueError, match="needs s > 0"):
        gamma_shape_mle(0.0)


def test_gamma_statistic_matches_mpmath_for_spread_and_nearly_constant_data():
    rng = np.random.default_rng(0)
    for x in (rng.gamma(0.2, 3.0, 300), 5.0 * (1 + 1e-7 * rng.standard_normal(300))):
        w = rng.random(300)
        w /= w.sum()
        mean, s = gamma_statistic(x, w)
        W = [mpmath.mpf(float(v)) for v in w]
        total = mpmath.fsum(W)
        mu = mpmath.fsum(wi * mpmath.mpf(float(v)) for wi, v in zip(W, x)) / total
        ref = mpmath.log(mu) - mpmath.fsum(wi * mpmath.log(mpmath.mpf(float(v))) for wi, v in zip(W, x)) / total
        assert mean == pytest.approx(float(mu), rel=1e-14)
        assert s == pytest.approx(float(ref), rel=1e-9)


@pytest.mark.parametrize("a, b", [(0.02, 0.03), (0.5, 2.0), (3.0, 3.0), (50.0, 0.7), (5e3, 2e3)])
def test_beta_solver_reaches_a_stationary_point(a, b):
    # Sufficient statistics of the distribution itself: the MLE is (a, b) exactly. At large
    # shapes the likelihood is nearly flat along a/b = const, so the rounding of the statistics
    # alone moves the optimum by ~1e-7 relative there; the likelihood must still be maximal.
    psi_ab = float(mpmath.digamma(a + b))
    mean_log_x = float(mpmath.digamma(a)) - psi_ab
    mean_log_1mx = float(mpmath.digamma(b)) - psi_ab
    for start in [(1.0, 1.0), (a * 10, b / 10), (0.01, 0.01)]:
        fitted = beta_shapes_mle(mean_log_x, mean_log_1mx, start)
        np.testing.assert_allclose(fitted, [a, b], rtol=1e-8 if a + b < 100 else 1e-6)
        best = beta_log_likelihood(a, b, mean_log_x, mean_log_1mx)
        assert beta_log_likelihood(*fitted, mean_log_x, mean_log_1mx) >= best - 1e-13 * (1 + abs(best))
        grad = digamma(fitted[0] + fitted[1]) - digamma(fitted) + [mean_log_x, mean_log_1mx]
        assert np.all(np.abs(grad) < 1e-9 * (1 + np.abs([mean_log_x, mean_log_1mx])))
