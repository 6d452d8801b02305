"""Binned FFT grids: linear binning, the padded FFT convolution and ``KernelDensity.evaluate_grid``
against the exact engine (all kernels, weights, per-feature and matrix bandwidths, d = 1, 2, 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import convolve as direct_convolve

from fastdensity import KernelDensity, threads
from fastdensity.kde._fft_binning import bin_linear_cpu, bin_linear_xp, extremes_cpu
from fastdensity.kde._fft_bound import cell_bound, support_radius
from fastdensity.kde._fft_evaluate import plan_grid
from fastdensity.kde._fft_grid import (
    binned_weights, convolve, fft_rounding, offset_radii, padded_shape,
)
from fastdensity.kde._kernels import KERNELS

EPS = np.finfo(np.float64).eps


def _data(rng, n, d):
    X = rng.standard_normal((n, d)) @ np.tril(rng.uniform(0.3, 1.0, (d, d)))
    return X, rng.uniform(0.2, 2.0, n)


# --------------------------------------------------------------------------------- binning
@pytest.mark.parametrize("d", [1, 2, 3])
def test_numba_binning_equals_the_bincount_version_and_keeps_the_mass(d):
    rng = np.random.default_rng(10 + d)
    X, w = _data(rng, 70_000, d)  # > one block of points: the parallel driver with several blocks
    lo, step = np.full(d, -2.0), np.full(d, 0.13)
    shape = (31,) * d  # covers [-2, 1.9]: many points fall outside and are dropped
    for weights in (None, w):
        a = bin_linear_cpu(X, weights, lo, step, shape)
        b = bin_linear_xp(np, X, weights, lo, step, shape)
        # The same products summed in another order: a few ulps of the total per node.
        np.testing.assert_allclose(a, b, rtol=0, atol=64 * EPS * (len(X) if weights is None else w.sum()))
        t = (X - lo) / step
        inside = np.all((t >= 0) & (t <= np.array(shape) - 1), axis=1)
        mass = inside.sum() if weights is None else w[inside].sum()
        assert a.sum() == pytest.approx(mass, rel=1e-12)
        # The first moment along each axis is kept exactly by linear binning.
        for i in range(d):
            coords = lo[i] + step[i] * np.arange(shape[i])
            axis_sum = a.sum(axis=tuple(k for k in range(d) if k != i))
            first = X[inside, i] @ (np.ones(inside.sum()) if weights is None else w[inside])
            assert axis_sum @ coords == pytest.approx(first, rel=1e-10, abs=1e-9)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_binning_keeps_points_on_the_edges_and_drops_those_just_outside(d):
    # The unsigned cell index is taken only after the range test: a point on the first or the
    # last node is binned there, one a step below or above the grid is dropped.
    lo, step, shape = np.zeros(d), np.full(d, 0.5), (5,) * d
    top = step * (np.array(shape) - 1)
    X = np.array([np.zeros(d), top, -step, top + step, top / 2])
    for weights in (None, np.array([1.0, 2.0, 4.0, 8.0, 16.0])):
        a = bin_linear_cpu(X, weights, lo, step, shape)
        w = np.ones(5) if weights is None else weights
        assert a[(0,) * d] == w[0]
        assert a[(-1,) * d] == w[1]
        assert a.sum() == w[0] + w[1] + w[4]


@pytest.mark.parametrize("n", [1, 2, 3, 32_768 * 2 + 1, 100_003])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_column_extremes_equal_numpy(n, d):
    X = np.random.default_rng(n + d).standard_normal((n, d))
    low, high = extremes_cpu(X)
    assert np.array_equal(low, X.min(axis=0)) and np.array_equal(high, X.max(axis=0))


def test_binning_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(3)
    X, w = _data(rng, 100_000, 2)
    with threads(1):
        one = bin_linear_cpu(X, w, np.array([-4.0, -4.0]), np.array([0.05, 0.05]), (161, 161))
    with threads(2):
        two = bin_linear_cpu(X, w, np.array([-4.0, -4.0]), np.array([0.05, 0.05]), (161, 161))
    assert np.array_equal(one, two)


# ------------------------------------------------------------------------------ convolution
@pytest.mark.parametrize("shape,half", [((50,), (7,)), ((300,), (299,)), ((40, 33), (5, 12)), ((9, 8, 7), (3, 2, 6))])
def test_fft_convolution_equals_the_direct_sum_within_its_rounding_floor(shape, half):
    rng = np.random.default_rng(sum(shape))
    counts = rng.uniform(size=shape)
    counts[counts < 0.5] = 0.0
    counts /= counts.sum()
    window = rng.uniform(size=tuple(2 * L + 1 for L in half))
    padded = padded_shape(shape, half)
    (fast,) = convolve(np, counts, [window], padded, half)
    slow = direct_convolve(counts, window, mode="full", method="direct")
    slow = slow[tuple(slice(L, L + n) for L, n in zip(half, shape))]
    floor = fft_rounding(padded, np, counts, window)
    assert np.max(np.abs(fast - slow)) <= floor


# ------------------------------------------------------------------------ evaluate_grid
def _binning_bound(est, plan):
    """(c ⊛ β_D)(g) on the output nodes: the stated bound on |f̃(g) − f(g)| (``_fft_bound``)."""
    counts = binned_weights(est, plan["ext_lo"], plan["step"], plan["ext_shape"])
    H_inv = np.linalg.inv(est.bandwidth_matrix_)
    Hinv_diag = np.diag(H_inv)
    D = float(np.sum(plan["step"] * np.sqrt(Hinv_diag)))
    curvature = float(np.sum(plan["step"] ** 2 * Hinv_diag)) / 8
    # β_D vanishes (compact kernels) or is negligible beyond the radius r_unit + D.
    reach = (support_radius(est.kernel) + D) * np.sqrt(np.diag(est.bandwidth_matrix_))
    half = tuple(int(min(n - 1, math.ceil(R / s))) for n, R, s in zip(plan["ext_shape"], reach, plan["step"]))
    r = offset_radii(plan["A"], plan["step"], half)
    (bound,) = convolve(np, counts, [cell_bound(est.kernel, r, D, curvature)], padded_shape(plan["ext_shape"], half), half)
    crop = tuple(slice(int(b), int(b) + n) for b, n in zip(plan["below"], plan["shape"]))
    return np.maximum(bound[crop], 0) * math.exp(plan["log_cn"])


def _nodes(coords):
    return np.stack([g.ravel() for g in np.meshgrid(*coords, indexing="ij")], axis=1)


def _check_against_exact(est, grid_points, bounds=None):
    plan = plan_grid(est, grid_points, bounds)
    coords, log_p = est.evaluate_grid(grid_points, bounds, below_floor="recompute")
    assert log_p.shape == tuple(len(c) for c in coords) == plan["shape"]
    exact = KernelDensity(kernel=est.kernel, bandwidth=est.bandwidth).fit(
        est.training_data_, sample_weight=est.sample_weight_).score_samples(_nodes(coords)).reshape(log_p.shape)
    np.testing.assert_array_equal(np.isneginf(log_p) & np.isneginf(exact), np.isneginf(log_p))
    bound = _binning_bound(est, plan)
    # Binning error bound + the FFT floor and kernel cut (far below it) + rounding of both sums.
    slack = 1e-12 * np.exp(np.max(exact))
    err = np.abs(np.exp(log_p) - np.exp(exact))
    assert np.all(err <= bound * (1 + 1e-9) + slack), float(np.max(err / (bound + slack)))
    return coords, log_p, exact


@pytest.mark.parametrize("kernel", KERNELS)
def test_evaluate_grid_1d_matches_the_exact_engine_within_the_binning_bound(kernel):
    rng = np.random.default_rng(1)
    X, w = _data(rng, 3000, 1)
    est = KernelDensity(kernel=kernel, bandwidth=0.35).fit(X, sample_weight=w)
    coords, log_p, exact = _check_against_exact(est, 512)
    (x,) = coords
    pad = {"gaussian": 4, "exponential": 8}.get(kernel, 1) * 0.35
    assert x[0] == pytest.approx(X.min() - pad) and x[-1] == pytest.approx(X.max() + pad)
    if kernel == "gaussian":  # smooth: relative error O((δ/h)²) where the density is large
        big = exact > np.max(exact) - 3
        assert np.max(np.abs(log_p - exact)[big]) < 0.01


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "exponential", "tophat", "triweight"])
def test_evaluate_grid_2d_per_feature_and_matrix_bandwidths(kernel):
    rng = np.random.default_rng(2)
    X, w = _data(rng, 2000, 2)
    for bw in (np.array([0.25, 0.5]), np.array([[0.16, 0.05], [0.05, 0.09]])):
        est = KernelDensity(kernel=kernel, bandwidth=bw).fit(X, sample_weight=w)
        _check_against_exact(est, (70, 90))


@pytest.mark.parametrize("kernel", ["gaussian", "biweight"])
def test_evaluate_grid_3d(kernel):
    rng = np.random.default_rng(3)
    X, _ = _data(rng, 1000, 3)
    est = KernelDensity(kernel=kernel, bandwidth=np.array([0.4, 0.5, 0.6])).fit(X)
    _check_against_exact(est, (20, 24, 22))


def test_evaluate_grid_with_bounds_inside_the_data_bins_the_points_outside():
    rng = np.random.default_rng(4)
    X, w = _data(rng, 3000, 2)
    est = KernelDensity(kernel="gaussian", bandwidth=0.3).fit(X, sample_weight=w)
    coords, _, _ = _check_against_exact(est, 41, bounds=[(-0.5, 0.5), (-0.3, 0.8)])
    assert coords[0][0] == -0.5 and coords[0][-1] == 0.5 and coords[1][-1] == pytest.approx(0.8)
    est = KernelDensity(kernel="epanechnikov", bandwidth=0.5).fit(X[:, :1])
    _check_against_exact(est, 33, bounds=(-1.0, 1.0))


def test_evaluate_grid_never_logs_rounding_noise():
    """Wide bounds: far nodes where the FFT result is below its rounding floor get the binned
    sum redone in log space (finite for the gaussian, -inf beyond a compact kernel's reach)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((500, 1))
    est = KernelDensity(kernel="gaussian", bandwidth=0.2).fit(X)
    (x,), log_p = est.evaluate_grid(400, bounds=(-12.0, 12.0), below_floor="recompute")
    assert np.all(np.isfinite(log_p))
    far = np.abs(x) > 9  # true log density below about −200 there: far beneath any FFT floor
    exact = KernelDensity(bandwidth=0.2).fit(X).score_samples(x[:, None])
    assert np.all(exact[far] < -200)
    # Binning moves each point by less than a cell δ = 0.06: at distance r ≈ 8.5 from the data
    # that shifts the log density (≈ −r²/2h² ≈ −900) by about rδ/h² ≈ 13, under 2 % of it.
    np.testing.assert_allclose(log_p[far], exact[far], rtol=0.1)
    # Against the log-space binned sum computed here from the counts.
    plan = plan_grid(est, 400, (-12.0, 12.0))
    counts = binned_weights(est, plan["ext_lo"], plan["step"], plan["ext_shape"]).ravel()
    nodes = plan["ext_lo"][0] + plan["step"][0] * np.arange(counts.size)
    occ = counts > 0
    terms = np.log(counts[occ])[None, :] - 0.5 * ((x[far][:, None] - nodes[occ][None, :]) / 0.2) ** 2
    ref = np.logaddexp.reduce(terms, axis=1) + plan["log_cn"]
    np.testing.assert_allclose(log_p[far], ref, rtol=0, atol=2.0**-30 + 1e-9)  # pruned at 2^-30

    est = KernelDensity(kernel="epanechnikov", bandwidth=0.2).fit(X)
    (x,), log_p = est.evaluate_grid(400, bounds=(-12.0, 12.0))
    beyond = (x < X.min() - 0.2 - 0.07) | (x > X.max() + 0.2 + 0.07)  # a cell past the support
    assert np.all(np.isneginf(log_p[beyond])) and np.all(np.isfinite(log_p[np.abs(x) < 1]))


def test_evaluate_grid_float32_and_defaults():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((800, 2))
    est32 = KernelDensity(bandwidth=0.4).fit(X.astype(np.float32))
    coords, log_p = est32.evaluate_grid()
    assert log_p.dtype == np.float32 and coords[0].dtype == np.float32 and log_p.shape == (256, 256)
    coords64, log_p64 = KernelDensity(bandwidth=0.4).fit(X.astype(np.float32).astype(np.float64)).evaluate_grid()
    # float32 rounding of values of order 1 (log densities down to about −60 at the corners).
    np.testing.assert_allclose(log_p, log_p64, rtol=4 * np.finfo(np.float32).eps, atol=1e-5)
    (x,), lp = KernelDensity(bandwidth=0.4).fit(X[:, :1]).evaluate_grid()
    assert lp.shape == (1024,)
    assert KernelDensity(bandwidth=0.4).fit(X[:, :1]).evaluate_grid(3)[1].shape == (3,)


def test_evaluate_grid_integrates_to_one():
    rng = np.random.default_rng(7)
    X, w = _data(rng, 2000, 2)
    for kernel in ("gaussian", "cosine"):
        (x, y), log_p = KernelDensity(kernel=kernel, bandwidth=[0.3, 0.2]).fit(X, sample_weight=w).evaluate_grid(200)
        total = np.exp(log_p).sum() * (x[1] - x[0]) * (y[1] - y[0])
        # A Riemann sum on 200² nodes of a density whose tails are cut at 4 bandwidths.
        assert total == pytest.approx(1.0, abs=2e-3)


def test_evaluate_grid_far_from_all_data_falls_back_to_the_exact_engine():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((300, 1))
    est = KernelDensity(bandwidth=0.1).fit(X)
    (x,), log_p = est.evaluate_grid(16, bounds=(50.0, 60.0), below_floor="recompute")
    np.testing.assert_allclose(log_p, est.score_samples(x[:, None]), rtol=1e-12)
    (x,), log_p = KernelDensity(kernel="cosine", bandwidth=0.1).fit(X).evaluate_grid(16, bounds=(50.0, 60.0))
    assert np.all(np.isneginf(log_p))


def test_below_floor_minus_inf_marks_exactly_the_nodes_that_are_recomputed():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((2000, 2))
    est = KernelDensity(bandwidth=0.15).fit(X)
    _, full = est.evaluate_grid(64, below_floor="recompute")
    _, fast = est.evaluate_grid(64)  # the default
    marked = np.isneginf(fast)
    assert marked.any() and np.all(np.isfinite(full))  # the round data leave the corners below F
    np.testing.assert_array_equal(fast[~marked], full[~marked])
    # the recomputed nodes lie far below the peak: under the floor of about 1e-10 of it
    assert np.all(full[marked] < np.max(full) + np.log(1e-9))
    with pytest.raises(ValueError, match=r"below_floor must be one of \('-inf', 'recompute'\); got 'zero'"):
        est.evaluate_grid(64, below_floor="zero")


@pytest.mark.parametrize("kernel,bandwidth", [("gaussian", [0.15, 0.2]), ("exponential", 0.1),
                                              ("gaussian", [[0.04, 0.015], [0.015, 0.03]]), ("biweight", 0.3)])
def test_pruned_tail_sums_equal_the_plain_log_space_sum(kernel, bandwidth):
    from fastdensity.kde._fft_tails_cpu import log_binned_sum
    from fastdensity.kde._kde_cpu import kde_logsum

    rng = np.random.default_rng(10)
    X = rng.standard_normal((3000, 2))
    est = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X)
    plan = plan_grid(est, 48, None)
    counts = binned_weights(est, plan["ext_lo"], plan["step"], plan["ext_shape"])
    nodes = np.stack([g.ravel() for g in np.meshgrid(*[np.arange(n) for n in plan["ext_shape"]], indexing="ij")], 1)
    pick = nodes[rng.choice(len(nodes), 300, replace=False)]
    centre = est._centre()
    got = log_binned_sum(counts, plan["ext_lo"], plan["step"], plan["A"], centre, kernel, pick)
    occ = np.stack(np.nonzero(counts > 0), axis=1)
    whiten = lambda idx: ((idx * plan["step"] + plan["ext_lo"]) - centre) @ plan["A"].T  # noqa: E731
    ref = kde_logsum(whiten(pick), whiten(occ), np.log(counts[tuple(occ.T)]), kernel)
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref))
    finite = np.isfinite(ref)
    # The blocks left out add at most 2^-30 of each sum (≤ 1e-9 in its log); the rest is the same
    # terms summed in another order (a few ulps).
    np.testing.assert_allclose(got[finite], ref[finite], rtol=0, atol=2.0**-30 + 1e-12)
    assert np.all(got[finite] <= ref[finite] + 1e-12)  # what is left out is never added
