"""Bandwidth rules: scott/silverman against scipy, ISJ against KDEpy, the LOO-CV grid engine against
a brute-force NumPy oracle."""

from __future__ import annotations

import warnings

import numba
import numpy as np
import pytest
import scipy.stats
from scipy.special import logsumexp

from fastdensity.kde._bandwidth import (
    cv_bandwidth_factor,
    effective_n,
    rule_bandwidth_matrix,
    scott_factor,
    silverman_factor,
    weighted_covariance,
)
from fastdensity.kde._bandwidth_isj import isj_bandwidth
from fastdensity.kde._kde_cv_cpu import TILE, kde_loo_logsum_grid
from fastdensity.kde._kernels import KERNELS, kernel_coordinate_variance, kernel_profile_log, log_kernel_norm


def _correlated(rng, n, d):
    A = rng.standard_normal((d, d)) + 2 * np.eye(d)
    return rng.standard_normal((n, d)) @ A.T + rng.uniform(-5, 5, d)


# ------------------------------------------------------------------------- rules of thumb


@pytest.mark.parametrize("rule", ["scott", "silverman"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("d", [1, 3])
def test_rules_match_scipy_gaussian_kde_covariance(rule, weighted, d):
    rng = np.random.default_rng(10 + d)
    X = _correlated(rng, 400, d)
    w = rng.uniform(0.1, 3.0, 400) if weighted else None
    ref = scipy.stats.gaussian_kde(X.T, bw_method=rule, weights=w)
    H = rule_bandwidth_matrix(X, w, rule, "gaussian")
    np.testing.assert_allclose(H, np.atleast_2d(ref.covariance), rtol=1e-12, atol=0)
    neff = effective_n(w) if weighted else 400.0
    np.testing.assert_allclose(neff, ref.neff, rtol=1e-13)
    factor = ref.scotts_factor() if rule == "scott" else ref.silverman_factor()
    ours = scott_factor(neff, d) if rule == "scott" else silverman_factor(neff, d)
    np.testing.assert_allclose(ours, factor, rtol=1e-13)


def test_weighted_covariance_matches_numpy_and_effective_n():
    rng = np.random.default_rng(1)
    X = _correlated(rng, 50, 4)
    w = rng.uniform(0, 2, 50)
    np.testing.assert_allclose(weighted_covariance(X, w), np.cov(X.T, aweights=w), rtol=1e-12)
    np.testing.assert_allclose(weighted_covariance(X), np.cov(X.T), rtol=1e-12)
    # Integer-valued equal weights: neff is the count; scaling weights changes nothing.
    assert effective_n(np.full(7, 3.0)) == pytest.approx(7.0, rel=1e-14)
    assert effective_n(5 * w) == pytest.approx(effective_n(w), rel=1e-13)


def test_tophat_1d_bandwidth_is_covariance_times_factor_squared_times_3():
    rng = np.random.default_rng(2)
    X = rng.normal(1.0, 2.5, (300, 1))
    assert kernel_coordinate_variance("tophat", 1) == pytest.approx(1.0 / 3.0, rel=1e-14)
    H = rule_bandwidth_matrix(X, None, "scott", "tophat")
    expected = np.var(X, ddof=1) * scott_factor(300, 1) ** 2 * 3.0
    np.testing.assert_allclose(H, [[expected]], rtol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel_gets_the_rules_covariance(kernel):
    # The kernel's covariance (H times the unit kernel's coordinate variance) is the same for all.
    rng = np.random.default_rng(3)
    X = _correlated(rng, 200, 2)
    H_gauss = rule_bandwidth_matrix(X, None, "silverman", "gaussian")
    H = rule_bandwidth_matrix(X, None, "silverman", kernel)
    np.testing.assert_allclose(H * kernel_coordinate_variance(kernel, 2), H_gauss, rtol=1e-12)


def test_rules_follow_the_data_scale_unlike_scikit_learn():
    rng = np.random.default_rng(4)
    X = _correlated(rng, 300, 2)
    H = rule_bandwidth_matrix(X, None, "scott", "epanechnikov")
    np.testing.assert_allclose(rule_bandwidth_matrix(1000.0 * X + 7.0, None, "scott", "epanechnikov"),
                               1e6 * H, rtol=1e-10)


def test_degenerate_covariance_errors_say_what_to_do():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((100, 3))
    X[:, 1] = 4.2
    with pytest.raises(ValueError, match=r"feature\(s\) \[1\] are constant.*drop the constant columns"):
        rule_bandwidth_matrix(X, None, "scott", "gaussian")
    X = rng.standard_normal((100, 3))
    X[:, 2] = 2.0 * X[:, 0] - X[:, 1]
    with pytest.raises(ValueError, match="collinear.*float bandwidth"):
        rule_bandwidth_matrix(X, None, "silverman", "gaussian")
    with pytest.raises(ValueError, match="at least 4 points with positive weight; got 3"):
        rule_bandwidth_matrix(X[:3], None, "scott", "gaussian")
    w = np.zeros(100)
    w[:2] = 1.0
    with pytest.raises(ValueError, match="at least 4 points with positive weight; got 2"):
        rule_bandwidth_matrix(X, w, "scott", "gaussian")


def test_rule_and_weight_validation():
    X = np.random.default_rng(6).standard_normal((20, 2))
    with pytest.raises(ValueError, match="rule must be one of"):
        rule_bandwidth_matrix(X, None, "normal_reference", "gaussian")
    with pytest.raises(ValueError, match="kernel must be one of"):
        rule_bandwidth_matrix(X, None, "scott", "box")
    with pytest.raises(ValueError, match="Negative values in data passed to `weights`"):
        rule_bandwidth_matrix(X, -np.ones(20), "scott", "gaussian")
    with pytest.raises(ValueError, match=r"weights.shape == \(3,\), expected \(20,\)"):
        rule_bandwidth_matrix(X, np.ones(3), "scott", "gaussian")
    with pytest.raises(ValueError, match="NaN or infinite"):
        rule_bandwidth_matrix(np.full((20, 2), np.nan), None, "scott", "gaussian")


def test_isj_is_one_dimensional_only():
    X = np.random.default_rng(7).standard_normal((50, 2))
    with pytest.raises(ValueError, match=r'"isj" is for 1-D data only.*"scott", "silverman" or "cv"'):
        rule_bandwidth_matrix(X, None, "isj", "gaussian")
    with pytest.raises(ValueError, match=r'"isj" is for 1-D data only'):
        isj_bandwidth(X)


def test_isj_rule_matrix_converts_to_the_kernel():
    x = np.random.default_rng(8).standard_normal((500, 1))
    sigma = isj_bandwidth(x)
    H = rule_bandwidth_matrix(x, None, "isj", "epanechnikov")
    np.testing.assert_allclose(H, [[sigma**2 * 5.0]], rtol=1e-12)  # epanechnikov variance 1/5


# --------------------------------------------------------------- improved Sheather–Jones


def _kdepy_isj(x, weights=None):
    """KDEpy's ISJ, corrected for its known scaling bug: KDEpy ≤ 1.1.12 solves on a grid padded by
    max(0.5·range, 6) per side but rescales √t* by the data range instead of the grid's span
    (KDEpy issues #199 and #201, pull request #200), which biases its bandwidths low ~2.5×."""
    import KDEpy
    from KDEpy.bw_selection import improved_sheather_jones

    raw = improved_sheather_jones(x[:, None], weights)
    version = tuple(int(p) for p in KDEpy.__version__.split(".")[:3])
    if version > (1, 1, 12):
        return raw
    R = np.ptp(x)
    return raw * (R + 2 * max(0.5 * R, 6.0)) / R


@pytest.mark.parametrize("dist", ["normal", "bimodal", "lognormal"])
def test_isj_matches_kdepy(dist):
    pytest.importorskip("KDEpy")
    rng = np.random.default_rng(20)
    x = {
        "normal": rng.standard_normal(5000),
        "bimodal": np.concatenate([rng.normal(-2, 0.5, 3000), rng.normal(2, 1.0, 2000)]),
        "lognormal": rng.lognormal(0.0, 0.5, 5000),
    }[dist]
    np.testing.assert_allclose(isj_bandwidth(x), _kdepy_isj(x), rtol=0.02)


def test_isj_weighted_matches_kdepy():
    pytest.importorskip("KDEpy")
    rng = np.random.default_rng(21)
    x = np.concatenate([rng.normal(-2, 0.5, 3000), rng.normal(2, 1.0, 2000)])
    w = rng.uniform(0.5, 1.5, x.size)
    # KDEpy uses n = #points in the fixed point, we use neff ≈ 0.92 n: a ~1.7% larger bandwidth.
    np.testing.assert_allclose(isj_bandwidth(x, w), _kdepy_isj(x, w), rtol=0.04)


def test_isj_of_normal_data_is_close_to_silverman():
    x = np.random.default_rng(22).standard_normal(10_000)
    silverman = silverman_factor(10_000, 1) * np.std(x, ddof=1)  # ≈ 0.17
    assert isj_bandwidth(x) == pytest.approx(silverman, rel=0.08)


def test_isj_is_affine_equivariant_and_weight_scale_free():
    rng = np.random.default_rng(23)
    x = rng.gamma(3.0, 1.0, 2000)
    h = isj_bandwidth(x)
    assert isj_bandwidth(1e-3 * x + 50.0) == pytest.approx(1e-3 * h, rel=1e-9)
    assert isj_bandwidth(x, np.full(x.size, 3.7)) == pytest.approx(h, rel=1e-12)
    # Points with weight 0 are dropped: the same as not passing them.
    x_more = np.concatenate([x, [-100.0, 100.0, 2.0]])
    w = np.r_[np.ones(x.size), 0.0, 0.0, 0.0]
    assert isj_bandwidth(x_more, w) == pytest.approx(h, rel=1e-12)


def test_isj_weighted_uses_the_weighted_histogram():
    # Importance weights turn a N(0, 2²) sample into a N(0, 1) one: the bandwidth follows the target.
    rng = np.random.default_rng(24)
    x = rng.normal(0.0, 2.0, 40_000)
    w = scipy.stats.norm.pdf(x) / scipy.stats.norm.pdf(x, scale=2.0)
    neff = effective_n(w)
    target = silverman_factor(neff, 1)  # σ = 1
    assert isj_bandwidth(x, w) == pytest.approx(target, rel=0.15)
    assert isj_bandwidth(x) == pytest.approx(2.0 * silverman_factor(x.size, 1), rel=0.15)


def test_isj_degenerate_input_raises_naming_the_problem():
    with pytest.raises(ValueError, match='at least 2 distinct data values.*use "scott"'):
        isj_bandwidth(np.full(100, 3.0))
    with pytest.raises(ValueError, match='at least 2 distinct data values.*use "scott"'):
        isj_bandwidth(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match='no root in the searched range.*use "scott"'):
        isj_bandwidth(np.array([0.0, 1.0, 5.0]))
    with pytest.raises(ValueError, match='below the binning resolution.*discrete.*use "scott"'):
        # untied data; tied (discrete) data fall back instead (tests/kde/test_bandwidth_rounded.py)
        isj_bandwidth(np.concatenate([np.random.default_rng(25).standard_normal(1000), [1e6]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        isj_bandwidth(np.array([0.0, np.inf, 1.0]))
    with pytest.raises(ValueError, match="empty"):
        isj_bandwidth(np.array([]))


# ----------------------------------------------------------------- LOO cross-validation


def _brute_loo_logsum(X, log_w, kernel, inv_factors):
    """log Σ_{j≠i} w_j k(r_ij / c) with an n × n distance matrix (the oracle)."""
    D = np.sqrt(np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1))
    out = np.empty((X.shape[0], len(inv_factors)))
    for c, f in enumerate(inv_factors):
        T = log_w[None, :] + kernel_profile_log(kernel, D * f)
        np.fill_diagonal(T, -np.inf)
        with np.errstate(divide="ignore"):
            out[:, c] = logsumexp(T, axis=1)
    return out


@pytest.mark.parametrize("kernel", ["gaussian", "exponential", "epanechnikov", "tophat", "cosine"])
@pytest.mark.parametrize("d", [1, 3])
def test_loo_grid_engine_matches_brute_force(kernel, d):
    rng = np.random.default_rng(30 + d)
    n = TILE + 88  # two tiles, so the left-out point is sometimes in the second
    X = rng.standard_normal((n, d))
    log_w = np.log(rng.uniform(0.1, 2.0, n))
    inv_factors = 1.0 / np.geomspace(0.02, 3.0, 7)
    got = kde_loo_logsum_grid(X, log_w, kernel, inv_factors)
    ref = _brute_loo_logsum(X, log_w, kernel, inv_factors)
    assert got.shape == (n, 7)
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref))
    if kernel != "gaussian" and kernel != "exponential":
        assert np.isneginf(ref).any()  # the smallest factor leaves some points alone
    fin = np.isfinite(ref)
    np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-12, atol=1e-12)


def test_loo_grid_engine_is_underflow_proof_and_thread_independent():
    # Two clusters 60 apart and tiny factors: every term is far below the float64 underflow limit.
    rng = np.random.default_rng(33)
    X = np.concatenate([rng.normal(0, 1, (3, 2)), rng.normal(60, 1, (1, 2)), rng.normal(0, 1, (200, 2))])
    inv_factors = np.array([1.0, 0.5, 10.0, 100.0])
    got = kde_loo_logsum_grid(X, None, "gaussian", inv_factors)
    ref = _brute_loo_logsum(X, np.zeros(len(X)), "gaussian", inv_factors)
    assert np.all(np.isfinite(got)) and got[3, 3] < -1e6
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = kde_loo_logsum_grid(X, None, "gaussian", inv_factors)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(single, got)


def test_loo_grid_engine_zero_weights_drop_sources():
    rng = np.random.default_rng(34)
    X = rng.standard_normal((60, 2))
    log_w = np.log(rng.uniform(0.5, 1.5, 60))
    log_w[::5] = -np.inf
    got = kde_loo_logsum_grid(X, log_w, "epanechnikov", [0.7, 2.0])
    keep = np.isfinite(log_w)
    D = np.sqrt(np.sum((X[:, None] - X[None, keep]) ** 2, axis=-1))
    for c, f in enumerate([0.7, 2.0]):
        T = log_w[keep][None, :] + kernel_profile_log("epanechnikov", D * f)
        T[np.flatnonzero(keep), np.arange(keep.sum())] = -np.inf  # leave i out
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(got[:, c], logsumexp(T, axis=1), rtol=1e-12)


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_cv_loglik_is_the_loo_log_likelihood(kernel):
    rng = np.random.default_rng(40)
    n, d = 150, 2
    X = rng.standard_normal((n, d))
    w = rng.uniform(0.2, 2.0, n)
    factors = np.geomspace(0.1, 4.0, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        best, loglik = cv_bandwidth_factor(X, w, kernel, factors)
    # Oracle: LOO density of x_i, c_d Σ_{j≠i} w_j k(r_ij/c) / (c^d Σ_{j≠i} w_j), weighted by w_i.
    D = np.sqrt(np.sum((X[:, None] - X[None]) ** 2, axis=-1))
    ref = np.empty(len(factors))
    for c, f in enumerate(factors):
        K = np.exp(log_kernel_norm(kernel, d) + kernel_profile_log(kernel, D / f)) / f**d
        np.fill_diagonal(K, 0.0)
        with np.errstate(divide="ignore"):
            ref[c] = np.sum(w * np.log(K @ w / (w.sum() - w)))
    np.testing.assert_array_equal(np.isneginf(loglik), np.isneginf(ref))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(loglik[fin], ref[fin], rtol=1e-11)
    assert best == factors[np.argmax(ref)]
    # Scaling the weights scales the log-likelihood and keeps the choice.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        best3, loglik3 = cv_bandwidth_factor(X, 3.0 * w, kernel, factors)
    assert best3 == best
    np.testing.assert_allclose(loglik3[fin], 3.0 * loglik[fin], rtol=1e-11)


def test_cv_picks_a_sensible_factor_on_bimodal_data():
    rng = np.random.default_rng(41)
    X = np.concatenate([rng.normal(-3, 0.5, (300, 1)), rng.normal(3, 0.5, (300, 1))])
    H0 = rule_bandwidth_matrix(X, None, "scott", "gaussian")
    h0 = np.sqrt(H0[0, 0])
    factors = np.geomspace(0.05, 3.0, 41)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the optimum is inside the grid
        best, loglik = cv_bandwidth_factor(X / h0, None, "gaussian", factors)
    # Scott's rule sees one wide bump (σ ≈ 3) and oversmooths the two narrow ones (σ = 0.5).
    assert 0.08 < best < 0.4
    assert loglik.max() > loglik[np.argmin(np.abs(factors - 1.0))] + 50
    # The chosen bandwidth agrees with ISJ within a factor of 2.
    assert 0.5 < best * h0 / isj_bandwidth(X[:, 0]) < 2.0


def test_cv_warns_at_the_edge_of_the_grid():
    rng = np.random.default_rng(42)
    X = np.concatenate([rng.normal(-3, 0.5, (200, 1)), rng.normal(3, 0.5, (200, 1))]) / 1.0
    with pytest.warns(UserWarning, match=r"at the edge of the candidate grid \[2, 4\] \(3 factors\)"):
        best, _ = cv_bandwidth_factor(X, None, "gaussian", [2.0, 3.0, 4.0])
    assert best == 2.0


def test_cv_zero_weight_points_change_nothing():
    rng = np.random.default_rng(43)
    X = rng.standard_normal((80, 2))
    X_more = np.concatenate([X, rng.standard_normal((5, 2)) + 10.0])
    w = np.r_[np.ones(80), np.zeros(5)]
    factors = np.geomspace(0.3, 3.0, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, a = cv_bandwidth_factor(X, None, "epanechnikov", factors)
        _, b = cv_bandwidth_factor(X_more, w, "epanechnikov", factors)
    np.testing.assert_allclose(b, a, rtol=1e-12)


def test_cv_errors():
    rng = np.random.default_rng(44)
    X = rng.uniform(0, 100, (50, 1))
    with pytest.raises(ValueError, match=r"every candidate bandwidth factor \(from 0.001 to 0.01\).*larger factors"):
        cv_bandwidth_factor(X, None, "tophat", [0.001, 0.01])
    with pytest.raises(ValueError, match="factors must be a non-empty array of positive"):
        cv_bandwidth_factor(X, None, "gaussian", [1.0, -2.0])
    with pytest.raises(ValueError, match="factors must be a non-empty array of positive"):
        cv_bandwidth_factor(X, None, "gaussian", [])
    with pytest.raises(ValueError, match="at least 2 points with positive weight"):
        cv_bandwidth_factor(X, np.r_[1.0, np.zeros(49)], "gaussian", [1.0])
    with pytest.raises(ValueError, match="kernel must be one of"):
        cv_bandwidth_factor(X, None, "quartic", [1.0])


def test_isj_skips_the_spiky_root_of_rounded_data():
    # Old Faithful eruption times have 126 distinct values among 272; ISJ's first root resolves the
    # rounding (h ≈ 3e-4 minutes, below the spacing of the values): it is skipped for the first
    # root at a bandwidth of at least the spacing (more in tests/kde/test_bandwidth_rounded.py).
    from fastdensity.datasets import load_old_faithful

    eruptions = load_old_faithful()[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # found, not the fallback
        h = isj_bandwidth(eruptions)
    assert 1 / 60 < h < 0.2


def test_isj_accepts_continuous_data_with_some_ties():
    rng = np.random.default_rng(11)
    x = np.round(rng.standard_normal(5000), 3)  # rounded to 1e-3, far below the bandwidth
    h = isj_bandwidth(x)
    assert 0.1 < h < 0.4
