"""``algorithm="fft"``: the stated error bound holds against the exact engine, and every returned
log density meets |p̂ − p| ≤ atol + rtol p (all kernels, weights, per-feature and matrix
bandwidths, d = 1, 2, 3)."""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity import KernelDensity
from fastdensity.kde import _fft_score
from fastdensity.kde._fft_score import interpolate, scoring_grid
from fastdensity.kde._kernels import KERNELS

EPS = np.finfo(np.float64).eps


@pytest.fixture(autouse=True)
def small_budget(monkeypatch):
    """Smaller scoring grids than the defaults (2^24 padded points in 2-D and 3-D take seconds to
    build): the bound and the guarantee hold at any size, only the share served changes."""
    monkeypatch.setattr(_fft_score, "SCORING_BUDGET", {1: 1 << 18, 2: 1 << 20, 3: 1 << 20})


def _data(rng, n, d):
    X = rng.standard_normal((n, d)) @ np.tril(rng.uniform(0.3, 1.0, (d, d)))
    return X, rng.uniform(0.2, 2.0, n)


def _queries(rng, X, m):
    """Near the data, in the tails, and a few outside the grid."""
    d = X.shape[1]
    Q = rng.standard_normal((m, d)) * X.std(axis=0) * 1.5
    Q[: m // 20] = X.max(axis=0) + 20.0
    return Q


def _exact(est, Q):
    ref = KernelDensity(kernel=est.kernel, bandwidth=est.bandwidth, algorithm="exact")
    return ref.fit(est.training_data_, sample_weight=est.sample_weight_).score_samples(Q)


def _check_bound(est, Q):
    """|f̂ − f| ≤ E(x) at every query inside the grid, before any choice of what to serve."""
    grid, fields = scoring_grid(est, np)
    value, bound, inside = interpolate(np, grid, fields, Q)
    exact = np.exp(_exact(est, Q))
    error = bound + grid["e0"]
    # The exact engine's own rounding: a few ulps of the density.
    slack = 8 * EPS * exact
    assert inside.mean() > 0.5
    assert np.all((np.abs(value - exact) <= error + slack)[inside])
    return value, error, inside


def _check_guarantee(est, Q, atol, rtol):
    out = est.score_samples(Q)
    exact = _exact(est, Q)
    np.testing.assert_array_equal(np.isneginf(out), np.isneginf(exact))
    finite = np.isfinite(exact)
    p, p_hat = np.exp(exact[finite]), np.exp(out[finite])
    # The guarantee plus the exact engine's rounding of p (the fallback rows equal it to rounding).
    assert np.all(np.abs(p_hat - p) <= atol + rtol * p + 8 * EPS * p)
    return out


@pytest.mark.parametrize("kernel", KERNELS)
def test_bound_and_guarantee_1d_weighted(kernel):
    rng = np.random.default_rng(11)
    X, w = _data(rng, 2000, 1)
    est = KernelDensity(kernel=kernel, bandwidth=0.3, algorithm="fft").fit(X, sample_weight=w)
    Q = _queries(rng, X, 3000)
    value, error, inside = _check_bound(est, Q)
    _check_guarantee(est, Q, 0.0, _fft_score.DEFAULT_RTOL)
    # The grid answers most queries near the data in 1-D for every kernel.
    served = inside & (value > error) & (error <= 1e-3 * (value - error))
    assert served.mean() > 0.6


@pytest.mark.parametrize("kernel", KERNELS)
def test_bound_and_guarantee_2d_per_feature_bandwidths(kernel):
    rng = np.random.default_rng(12)
    X, w = _data(rng, 1500, 2)
    est = KernelDensity(kernel=kernel, bandwidth=np.array([0.25, 0.45]), algorithm="fft", rtol=0.02)
    est.fit(X, sample_weight=w)
    Q = _queries(rng, X, 2000)
    _check_bound(est, Q)
    _check_guarantee(est, Q, 0.0, 0.02)


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "exponential"])
def test_bound_and_guarantee_matrix_bandwidth_and_atol(kernel):
    rng = np.random.default_rng(13)
    X, _ = _data(rng, 1500, 2)
    H = np.array([[0.09, 0.04], [0.04, 0.16]])
    est = KernelDensity(kernel=kernel, bandwidth=H, algorithm="fft", atol=1e-4, rtol=1e-3).fit(X)
    Q = _queries(rng, X, 2000)
    _check_bound(est, Q)
    _check_guarantee(est, Q, 1e-4, 1e-3)


@pytest.mark.parametrize("kernel", ["gaussian", "triweight", "tophat"])
def test_bound_and_guarantee_3d(kernel):
    rng = np.random.default_rng(14)
    X, w = _data(rng, 600, 3)
    est = KernelDensity(kernel=kernel, bandwidth=np.array([0.5, 0.6, 0.7]), algorithm="fft", rtol=0.05)
    est.fit(X, sample_weight=w)
    Q = _queries(rng, X, 800)
    _check_bound(est, Q)
    _check_guarantee(est, Q, 0.0, 0.05)


def test_gaussian_1d_grid_serves_the_bulk_and_the_exact_engine_the_rest(monkeypatch):
    rng = np.random.default_rng(15)
    X = rng.standard_normal((5000, 1))
    est = KernelDensity(bandwidth=0.2, algorithm="fft").fit(X)
    Q = np.concatenate([rng.standard_normal((2000, 1)), [[40.0], [-40.0]]])
    exact_rows = []
    from fastdensity.kde._engine_cpu import CPU_ENGINE

    original = CPU_ENGINE.log_density

    def spy(est_, Y):
        exact_rows.append(len(Y))
        return original(est_, Y)

    monkeypatch.setattr(CPU_ENGINE, "log_density", spy)
    out = est.score_samples(Q)
    assert exact_rows == [2]  # only the two queries outside the grid
    ref = _exact(est, Q)
    assert np.max(np.abs(out - ref)) <= 1e-3 * (1 + 1e-9)  # |Δ log p| ≤ −log(1 − rtol) ≈ rtol
    assert np.isfinite(out[-1]) and out[-1] == pytest.approx(ref[-1], rel=1e-12)


def test_fft_scores_float32_as_float32_and_reuse_the_grid():
    rng = np.random.default_rng(16)
    X = rng.standard_normal((1000, 2)).astype(np.float32)
    est = KernelDensity(bandwidth=0.3, algorithm="fft").fit(X)
    Q = rng.standard_normal((500, 2)).astype(np.float32)
    out = est.score_samples(Q)
    assert out.dtype == np.float32
    grid = est._cache()["fft_grid"]
    est.score_samples(Q[:10])
    assert est._cache()["fft_grid"] is grid  # built once per fit
    ref = KernelDensity(bandwidth=0.3).fit(X).score_samples(Q)
    # rtol 1e-3 of the grid plus float32 rounding of log densities of order 10.
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-3 + 10 * 16 * np.finfo(np.float32).eps)
    est.fit(X[:500])
    assert "fft_grid" not in est._cache()


def test_fft_score_is_finite_far_from_the_data_and_matches_exact_for_compact_zero():
    rng = np.random.default_rng(17)
    X = rng.standard_normal((400, 1))
    Q = np.array([[100.0], [-3.0], [0.0]])
    for kernel in ("gaussian", "epanechnikov"):
        out = KernelDensity(kernel=kernel, bandwidth=0.3, algorithm="fft").fit(X).score_samples(Q)
        ref = KernelDensity(kernel=kernel, bandwidth=0.3).fit(X).score_samples(Q)
        np.testing.assert_array_equal(np.isneginf(out), np.isneginf(ref))
        assert out[0] == pytest.approx(ref[0], rel=1e-12) or np.isneginf(ref[0])


def test_a_saved_fft_model_scores_the_same_after_loading(tmp_path):
    from fastdensity.io import load, save

    rng = np.random.default_rng(18)
    X = rng.standard_normal((800, 2))
    est = KernelDensity(bandwidth=[0.3, 0.4], kernel="biweight", algorithm="fft", rtol=0.01).fit(X)
    Q = rng.standard_normal((200, 2))
    save(est, tmp_path / "fft.npz")
    loaded = load(tmp_path / "fft.npz")
    assert loaded.algorithm == "fft"
    np.testing.assert_array_equal(loaded.score_samples(Q), est.score_samples(Q))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_numba_interpolation_equals_the_namespace_generic_one(d):
    from fastdensity.kde._fft_interp_cpu import interpolate_cpu

    rng = np.random.default_rng(19)
    X, _ = _data(rng, 300, d)
    est = KernelDensity(bandwidth=0.6, algorithm="fft", rtol=0.05).fit(X)
    grid, fields = scoring_grid(est, np)
    for m in (50, 30_000):  # the serial and the parallel driver
        Q = _queries(rng, X, m)
        a = interpolate_cpu(grid, fields, Q)
        b = interpolate(np, grid, fields, Q)
        np.testing.assert_array_equal(a[2], b[2])
        for u, v, top in zip(a[:2], b[:2], np.abs(fields).max(axis=1)):
            # the same 2^d products, summed in another order: a few ulps of the largest node value
            np.testing.assert_allclose(u, v, rtol=0, atol=4 * 2**d * EPS * top)
