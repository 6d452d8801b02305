"""Bounded data: ``KernelDensity(bounds=..., boundary="reflection")``.

Integration to 1 over the domain (1-D: Gauss–Legendre on pieces where the density is smooth, so
the quadrature error is negligible; 2-D: tensor Gauss–Legendre), agreement with a brute-force
NumPy reflection estimator, sampling inside the domain and distributed as the density (KS and
chi-square tests at fixed seeds), -inf outside, the errors, model files, and the GPU path on the
host emulation.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bounds_helpers import (
    cell_masses_2d, fold_ref, integrate_1d, integrate_2d, pieces, plain_log_density, reflected_log_density,
)
from fastdensity import KernelDensity
from fastdensity.kde._bandwidth import abramson_from_pilot
from fastdensity.kde._kernels import KERNELS

# Float64 log densities of the engine agree with the brute-force reference to 1e-12 (absolute, log
# space: tests/kde/test_kde_reference.py), i.e. relative 1e-12 in the density; the 8-point
# Gauss–Legendre rule is exact for the polynomial kernels on each piece and, on pieces no longer than
# h/4, below 1e-20 for the smooth ones. So an integral is 1 to about 1e-12; 1e-10 leaves a margin
# and still catches a missing mirror image (the smallest in these cases carries more than 1e-4).
INTEGRAL_TOL = 1e-10
REF_ATOL = 1e-11  # log-space agreement with the brute-force reflection (the reference's 1e-12, ×10)

W = 2.0  # the two-sided domain [0, W]


def _data_1d(rng, n=40):
    """Data piled up against 0 and reaching W (a beta sample scaled to [0, W])."""
    x = rng.beta(0.6, 1.5, size=n) * W
    x[0], x[1] = 0.0, W  # values exactly on the bounds
    return x[:, None]


def _cuts(kde, X, low, high, lo, hi, max_len):
    """Cut points of [lo, hi] at the fold into [low, high] of every y_j and y_j ± λ_j h (where the
    density has its kinks), pieces no longer than max_len."""
    h = float(np.sqrt(kde.bandwidth_matrix_[0, 0]))
    lam = np.ones(len(X)) if kde.adaptive_factors_ is None else kde.adaptive_factors_
    raw = np.concatenate([X[:, 0] + s * lam * h for s in (-1.0, 0.0, 1.0)])
    breaks = np.array([fold_ref(y, low, high) for y in raw])
    return pieces(breaks, lo, hi, max_len)


def _ends(bounds):
    """(low, high) of a 1-D bounds list as floats, ±inf for an open side."""
    a, b = bounds[0]
    return (-np.inf if a is None else float(a)), (np.inf if b is None else float(b))


# (name, bounds, h, weighted, adaptive): two-sided with a narrow and a wide kernel (h > W/2: second
# images count), one-sided at either end, adaptive on the two-sided domain.
CASES_1D = [
    ("two-sided narrow", [(0.0, W)], 0.15, False, False),
    ("two-sided wide", [(0.0, W)], 1.3, True, False),
    ("low only", [(0.0, None)], 0.5, True, False),
    ("high only", [(-np.inf, W)], 0.5, False, False),
    ("adaptive", [(0.0, W)], 0.6, True, True),
]


@pytest.mark.parametrize("kernel", KERNELS)
def test_1d_density_integrates_to_one_on_the_domain(kernel):
    rng = np.random.default_rng(0)
    X = _data_1d(rng)
    w = rng.uniform(0.2, 3.0, size=len(X))
    for name, bounds, h, weighted, adaptive in CASES_1D:
        kde = KernelDensity(kernel=kernel, bandwidth=h, adaptive=adaptive, bounds=bounds).fit(
            X, sample_weight=w if weighted else None)
        low, high = _ends(bounds)
        lam = np.ones(len(X)) if kde.adaptive_factors_ is None else kde.adaptive_factors_
        # an open side is cut 80 λ h beyond the data: the kernel mass past it is below e^-80
        lo = low if np.isfinite(low) else X.min() - 80 * lam.max() * h
        hi = high if np.isfinite(high) else X.max() + 80 * lam.max() * h
        cuts = _cuts(kde, X, low, high, lo, hi, max_len=lam.min() * h / 4)
        total, _ = integrate_1d(kde, cuts)
        assert abs(total - 1.0) < INTEGRAL_TOL, (name, total)


@pytest.mark.parametrize("kernel", KERNELS)
def test_1d_matches_brute_force_reflection(kernel):
    rng = np.random.default_rng(1)
    X = _data_1d(rng, n=30)
    w = rng.uniform(0.2, 3.0, size=len(X))
    # the grid is offset so that no query lies on a compact kernel's support edge (data on 0 and W,
    # h = 0.15, ... would put grid points exactly there, where 1 − r² has no correct digits)
    grid = np.linspace(-0.5, W + 0.5, 301) + 0.00314159
    Q = np.concatenate([grid, [0.0, W, 1e-300, np.nextafter(W, 0)]])[:, None]
    for name, bounds, h, weighted, adaptive in CASES_1D:
        kde = KernelDensity(kernel=kernel, bandwidth=h, adaptive=adaptive, bounds=bounds).fit(
            X, sample_weight=w if weighted else None)
        low, high = (np.array([e]) for e in _ends(bounds))
        # 40 tiles each way: the exponential kernel's widest reach here is below 30
        ref = reflected_log_density(X, w if weighted else None, kernel, kde.bandwidth_matrix_,
                                    kde.adaptive_factors_, Q, low, high, tiles=40)
        ours = kde.score_samples(Q)
        np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(ref), err_msg=name)
        finite = np.isfinite(ref)
        np.testing.assert_allclose(ours[finite], ref[finite], rtol=0, atol=REF_ATOL, err_msg=name)


def test_far_from_the_data_the_log_density_keeps_every_image():
    """Data only near 0, a query at the far end W: its images under the reflection at W (W itself),
    at 0 (−W) and the translation by −2W (−W again) are as close to the data as the query, so
    f_R(W) ≈ 4 f̂(W); dropping the translation (a tile beyond the kernel's reach) would be off by
    log 4/3."""
    X = np.array([[0.0], [0.01], [0.02]])
    kde = KernelDensity(bandwidth=0.1, bounds=[(0.0, W)]).fit(X)
    Q = np.array([[W], [W - 0.3], [1.0]])
    ref = reflected_log_density(X, None, "gaussian", kde.bandwidth_matrix_, None, Q, np.array([0.0]),
                                np.array([W]), tiles=12)
    ours = kde.score_samples(Q)
    assert np.all(np.isfinite(ours)) and ours[0] < -150  # 20 bandwidths from the data: tiny but finite
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)


def test_log_density_is_minus_inf_outside_and_finite_on_the_bounds():
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 1, size=(50, 2))
    kde = KernelDensity(bandwidth=0.3, bounds=[(0.0, 1.0), (0.0, None)]).fit(X)
    inside = np.array([[0.0, 0.0], [1.0, 0.5], [0.5, 40.0]])
    outside = np.array([[np.nextafter(0.0, -1), 0.5], [np.nextafter(1.0, 2), 0.5], [0.5, -1e-300], [-3.0, -3.0]])
    assert np.all(np.isfinite(kde.score_samples(inside)))
    assert np.all(kde.score_samples(outside) == -np.inf)
    outside32 = np.array([[-1e-6, 0.5], [1 + 1e-6, 0.5], [0.5, -1e-6], [-3.0, -3.0]])  # outside in float32 too
    out32 = kde.score_samples(np.vstack([inside, outside32]).astype(np.float32))
    assert out32.dtype == np.float32
    assert np.all(np.isfinite(out32[:3])) and np.all(out32[3:] == -np.inf)


def test_one_sided_spellings_and_unbounded_entries_agree():
    rng = np.random.default_rng(3)
    X = rng.exponential(size=(60, 2))
    Q = rng.exponential(size=(40, 2))
    a = KernelDensity(bandwidth=0.4, bounds=[(0, None), None]).fit(X).score_samples(Q)
    b = KernelDensity(bandwidth=0.4, bounds=np.array([[0.0, np.inf], [-np.inf, np.inf]])).fit(X).score_samples(Q)
    np.testing.assert_array_equal(a, b)
    plain = KernelDensity(bandwidth=0.4).fit(X).score_samples(Q)
    np.testing.assert_array_equal(KernelDensity(bandwidth=0.4, bounds=[None, (None, None)]).fit(X).score_samples(Q),
                                  plain)


def test_adaptive_pilot_is_the_reflected_density():
    rng = np.random.default_rng(4)
    X = _data_1d(rng, n=50)
    w = rng.uniform(0.5, 2.0, size=len(X))
    fixed = KernelDensity(bandwidth=0.3, bounds=[(0.0, W)]).fit(X, sample_weight=w)
    adaptive = KernelDensity(bandwidth=0.3, bounds=[(0.0, W)], adaptive=True).fit(X, sample_weight=w)
    np.testing.assert_allclose(adaptive.adaptive_factors_, abramson_from_pilot(fixed.score_samples(X), w),
                               rtol=1e-12)
    unbounded = KernelDensity(bandwidth=0.3, adaptive=True).fit(X, sample_weight=w)
    assert not np.allclose(adaptive.adaptive_factors_, unbounded.adaptive_factors_, rtol=1e-3)


# ------------------------------------------------------------------------------------- 2-D
def _data_2d(rng, n=60):
    X = np.column_stack([rng.beta(0.7, 1.2, size=n), rng.exponential(0.5, size=n)])
    X[0] = [0.0, 0.0]
    X[1] = [1.0, 0.0]
    return X


def test_2d_full_bandwidth_matrix_integrates_to_one():
    """A non-diagonal bandwidth matrix, weights and adaptive factors on [0, 1] × [0, ∞): reflecting
    the queries is exact here (reflecting the data with the same matrix is not)."""
    rng = np.random.default_rng(5)
    X = _data_2d(rng)
    w = rng.uniform(0.2, 2.0, size=len(X))
    H = np.array([[0.04, 0.024], [0.024, 0.09]])
    kde = KernelDensity(bandwidth=H, adaptive=True, bounds=[(0.0, 1.0), (0.0, None)]).fit(X, sample_weight=w)
    lam = kde.adaptive_factors_
    sy = 0.3
    # beyond 12 whitened radii the gaussian's mass is below e^-72: y is cut there. Cells as wide as
    # the narrowest kernel's scale (λ_min times the smaller axis of H, 0.17): the 8-point rule's error
    # on such a cell is below 1e-16 of its mass for a gaussian
    cell = 0.17 * lam.min()
    cuts_x = pieces(np.array([]), 0.0, 1.0, cell)
    cuts_y = pieces(np.array([]), 0.0, X[:, 1].max() + 12 * sy * lam.max(), cell)
    assert abs(integrate_2d(kde, cuts_x, cuts_y) - 1.0) < INTEGRAL_TOL

    # and it matches the brute-force reflection of the queries, pointwise
    Q = np.column_stack([rng.uniform(-0.1, 1.1, 60), rng.uniform(-0.1, 2.0, 60)])
    ref = reflected_log_density(X, w, "gaussian", H, kde.adaptive_factors_, Q, np.array([0.0, 0.0]),
                                np.array([1.0, np.inf]), tiles=6)
    ours = kde.score_samples(Q)
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(ref))
    np.testing.assert_allclose(ours[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=0, atol=REF_ATOL)


def test_2d_compact_kernel_on_a_box_integrates_to_one():
    """The biweight kernel (C¹ at its support's edge, which is an ellipse here) on [0, 1] × [-1, 1]
    with a bandwidth comparable to the box. The tensor rule is not exact across the edge: its error
    is estimated from two resolutions (the difference of the two, ×10)."""
    rng = np.random.default_rng(6)
    X = np.column_stack([rng.beta(0.7, 1.2, size=40), rng.uniform(-1, 1, size=40)])
    kde = KernelDensity(kernel="biweight", bandwidth=np.array([0.6, 0.9]),
                        bounds=[(0.0, 1.0), (-1.0, 1.0)]).fit(X)
    coarse = integrate_2d(kde, np.linspace(0, 1, 25), np.linspace(-1, 1, 49))
    fine = integrate_2d(kde, np.linspace(0, 1, 49), np.linspace(-1, 1, 97))
    tol = max(10 * abs(fine - coarse), INTEGRAL_TOL)
    assert tol < 1e-4  # the check means something: missing images would lose more than 1e-2
    assert abs(fine - 1.0) < tol, (fine, coarse)


# --------------------------------------------------------------------------------- sampling
def test_1d_samples_stay_inside_and_follow_the_density():
    rng = np.random.default_rng(7)
    X = _data_1d(rng, n=30)
    w = rng.uniform(0.2, 3.0, size=len(X))
    kde = KernelDensity(kernel="epanechnikov", bandwidth=1.3, bounds=[(0.0, W)]).fit(X, sample_weight=w)
    draws = kde.sample(20000, random_state=11)[:, 0]
    assert draws.min() >= 0.0 and draws.max() <= W
    cuts = _cuts(kde, X, 0.0, W, 0.0, W, max_len=W / 512)
    _, masses = integrate_1d(kde, cuts)
    cdf_at_cuts = np.concatenate([[0.0], np.cumsum(masses)])

    def cdf(t):  # linear between cut points 1/256 of W apart: error < 1e-4, far below the KS scale
        return np.interp(t, cuts, cdf_at_cuts)

    # KS at level 1e-3; its critical value 1.95/√n = 0.014 is 100 times the CDF's error
    assert stats.kstest(draws, cdf).pvalue > 1e-3
    # the plain, unbounded KDE's draws folded by the reference fold are the same draws
    plain = KernelDensity(kernel="epanechnikov", bandwidth=1.3).fit(X, sample_weight=w).sample(200, random_state=5)
    folded = np.array([fold_ref(y, 0.0, W) for y in plain[:, 0]])
    np.testing.assert_allclose(kde.sample(200, random_state=5)[:, 0], folded, rtol=0, atol=1e-14)


def test_2d_samples_follow_the_density_chi_square():
    rng = np.random.default_rng(8)
    X = np.column_stack([rng.beta(0.7, 1.2, size=50), 2 * rng.beta(1.5, 0.8, size=50)])
    H = np.array([[0.05, 0.03], [0.03, 0.16]])
    kde = KernelDensity(bandwidth=H, bounds=[(0.0, 1.0), (0.0, 2.0)]).fit(X)
    n = 40000
    draws = kde.sample(n, random_state=12)
    assert np.all((draws >= 0.0) & (draws <= [1.0, 2.0]))
    edges_x, edges_y = np.linspace(0, 1, 5), np.linspace(0, 2, 5)
    expected = cell_masses_2d(kde, edges_x, edges_y)
    assert abs(expected.sum() - 1.0) < 1e-8  # quadrature of a smooth density, 8 × 8 cells per cell
    counts, _, _ = np.histogram2d(draws[:, 0], draws[:, 1], bins=[edges_x, edges_y])
    assert stats.chisquare(counts.ravel(), expected.ravel() * n / expected.sum()).pvalue > 1e-3


@pytest.mark.parametrize("kernel", ["gaussian", "exponential", "tophat", "cosine"])
def test_samples_stay_inside_for_float32_data_and_one_sided_bounds(kernel):
    rng = np.random.default_rng(9)
    X = rng.uniform(0.1, 0.3, size=(40, 2)).astype(np.float32)
    X = X[np.all((X.astype(np.float64) >= 0.1) & (X.astype(np.float64) <= 0.3), axis=1)]
    bounds = [(0.1, 0.3), (None, 0.3)]  # neither 0.1 nor 0.3 is a float32 value
    kde = KernelDensity(kernel=kernel, bandwidth=0.2, bounds=bounds).fit(X)
    draws = kde.sample(5000, random_state=2)
    assert draws.dtype == np.float32
    d64 = draws.astype(np.float64)
    assert np.all((d64[:, 0] >= 0.1) & (d64[:, 0] <= 0.3) & (d64[:, 1] <= 0.3))
    if kernel in ("gaussian", "exponential"):  # a compact kernel's draw may round onto its support's edge
        assert np.all(np.isfinite(kde.score_samples(draws)))


# ----------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bounds,error,match", [
    ([(1.0, 0.0)], ValueError, r"bounds\[0\] = \(1.0, 0.0\) needs low < high; got low 1.0 >= high 0.0"),
    ([(0.5, 0.5)], ValueError, r"needs low < high"),
    ([(np.nan, 1.0)], ValueError, r"bounds\[0\]\[0\] must be a number, an infinity or None; got nan"),
    ([(np.inf, None)], ValueError, r"bounds\[0\]\[0\] \(a lower bound\) cannot be \+inf"),
    ([(None, -np.inf)], ValueError, r"bounds\[0\]\[1\] \(an upper bound\) cannot be -inf"),
    ([("0", 1.0)], TypeError, r"bounds\[0\]\[0\] must be a number.*got '0'"),
    ([(0.0, 1.0, 2.0)], TypeError, r"bounds\[0\] must be None or a pair \(low, high\)"),
    (3.0, TypeError, r"bounds must be None or a sequence with one entry per feature"),
    ("low", TypeError, r"bounds must be None or a sequence"),
])
def test_invalid_bounds_raise(bounds, error, match):
    with pytest.raises(error, match=match):
        KernelDensity(bounds=bounds).fit(np.zeros((3, 1)) + 0.5)


def test_bounds_checked_against_the_data_before_any_work():
    X = np.array([[0.2, 1.0], [0.4, 3.0]])
    with pytest.raises(ValueError, match=r"one entry per feature: X has 2 features; bounds has 1 entries"):
        KernelDensity(bounds=[(0, 1)]).fit(X)
    with pytest.raises(ValueError, match=r"outside bounds\[1\]: the upper bound is 2.0, and X\[:, 1\] has values up to 3.0"):
        KernelDensity(bounds=[(0, 1), (0, 2)]).fit(X)
    with pytest.raises(ValueError, match=r"outside bounds\[0\]: the lower bound is 0.3, and X\[:, 0\] has values down to 0.2"):
        KernelDensity(bounds=[(0.3, None), None]).fit(X)
    with pytest.raises(ValueError, match=r"bounds need the euclidean metric.*got metric='manhattan'"):
        KernelDensity(bounds=[(0, 1), None], metric="manhattan").fit(X)
    with pytest.raises(ValueError, match=r"boundary must be one of \('reflection',\); got 'renormalization'"):
        KernelDensity(bounds=[(0, 1), None], boundary="renormalization").fit(X)
    with pytest.raises(ValueError, match=r"more than 4096 mirror images per query"):
        KernelDensity(bandwidth=50.0, bounds=[(0, 1), (0, 4)]).fit(X)


# ------------------------------------------------------------------------- estimator plumbing
def test_clone_params_and_fitted_attributes_keep_their_meaning():
    from sklearn.base import clone

    rng = np.random.default_rng(10)
    X = rng.uniform(0, 1, size=(30, 1))
    w = rng.uniform(0.5, 1.5, size=30)
    kde = KernelDensity(bandwidth=0.2, bounds=[(0, 1)]).fit(X, sample_weight=w)
    assert clone(kde).get_params()["bounds"] == [(0, 1)]
    np.testing.assert_array_equal(kde.training_data_, X)  # the user's data, no images
    np.testing.assert_array_equal(kde.sample_weight_, w)


def test_model_file_round_trip_and_check(tmp_path):
    import fastdensity as fd
    from model_files import read_archive, write_archive

    rng = np.random.default_rng(11)
    X = np.column_stack([rng.uniform(0, 1, 40), rng.exponential(size=40)])
    kde = KernelDensity(bandwidth="scott", kernel="cosine", bounds=[(0.0, 1.0), (0.0, np.inf)]).fit(X)
    path = tmp_path / "m.npz"
    fd.save(kde, path)
    loaded = fd.load(path)
    Q = np.column_stack([rng.uniform(-0.2, 1.2, 50), rng.uniform(-0.2, 3, 50)])
    np.testing.assert_array_equal(loaded.score_samples(Q), kde.score_samples(Q))
    np.testing.assert_array_equal(loaded.sample(20, random_state=1), kde.sample(20, random_state=1))
    arrays, meta = read_archive(path)
    meta["params"]["bounds"] = [[0.0, 0.5], [0.0, None]]  # excludes training rows
    with pytest.raises(ValueError, match=r"bounds.*must hold the training data; \d+ row\(s\) of training_data_ lie outside"):
        fd.load(write_archive(tmp_path / "bad.npz", arrays, meta))
    meta["params"]["bounds"] = [[1.0, 0.0], [0.0, None]]
    with pytest.raises(ValueError, match=r"bounds.*is not a valid bounds parameter.*needs low < high"):
        fd.load(write_archive(tmp_path / "bad2.npz", arrays, meta))


# --------------------------------------------------------------------------- GPU, emulated
@pytest.mark.slow
def test_emulated_gpu_path_matches_the_cpu(monkeypatch):
    import sys

    import cuda_host_emulation

    if not cuda_host_emulation.available():
        pytest.skip("g++ is not installed")
    cuda_host_emulation.fake_cupy(monkeypatch, sm_count=2, device_arrays=True)
    cp = sys.modules["cupy"]
    rng = np.random.default_rng(12)
    X = _data_2d(rng, n=80)
    w = rng.uniform(0.5, 2.0, size=len(X))
    bounds = [(0.0, 1.0), (0.0, None)]
    H = np.array([[0.03, 0.01], [0.01, 0.05]])
    cpu = KernelDensity(bandwidth=H, adaptive=True, bounds=bounds).fit(X, sample_weight=w)
    dev = KernelDensity(bandwidth=H, adaptive=True, bounds=bounds).fit(cp.asarray(X), sample_weight=w)
    assert isinstance(dev.training_data_, cp.ndarray) and isinstance(dev.adaptive_factors_, cp.ndarray)
    np.testing.assert_allclose(dev.adaptive_factors_.get(), cpu.adaptive_factors_, rtol=1e-9)  # reflected pilot on the device
    Q = np.column_stack([rng.uniform(-0.1, 1.1, 200), rng.uniform(-0.1, 2.5, 200)])
    out = dev.score_samples(cp.asarray(Q))
    assert isinstance(out, cp.ndarray)
    ref = cpu.score_samples(Q)
    np.testing.assert_array_equal(np.isneginf(out.get()), np.isneginf(ref))
    np.testing.assert_allclose(out.get()[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=0, atol=1e-9)
    draws = dev.sample(5000, random_state=3)
    assert isinstance(draws, cp.ndarray)
    d = draws.get()
    assert np.all((d[:, 0] >= 0) & (d[:, 0] <= 1) & (d[:, 1] >= 0))
    with pytest.raises(ValueError, match=r"outside bounds\[1\]"):
        KernelDensity(bounds=[(0.0, 1.0), (0.5, None)]).fit(cp.asarray(X))


@pytest.mark.parametrize("kernel", ["gaussian", "biweight"])
def test_bounds_with_the_fft_algorithm_sum_fft_densities_of_the_images(kernel):
    """bounds + algorithm="fft": the reflection estimator over the FFT path's unbounded densities
    (each within atol + rtol·p of the exact one, so their sum is within rtol of the exact sum)."""
    rng = np.random.default_rng(41)
    X = np.abs(rng.standard_normal((4000, 1)))  # piled against the bound at 0
    Q = np.linspace(0.0, 3.0, 301)[:, None]
    exact = KernelDensity(bandwidth=0.2, kernel=kernel, bounds=[(0.0, None)]).fit(X).score_samples(Q)
    fft = KernelDensity(bandwidth=0.2, kernel=kernel, bounds=[(0.0, None)], algorithm="fft", rtol=1e-4).fit(X)
    got = fft.score_samples(Q)
    finite = np.isfinite(exact)
    assert np.array_equal(finite, np.isfinite(got))
    # |p_fft - p| <= 1e-4 p per image, so |log p_fft - log p| <= -log(1 - 1e-4) plus rounding
    np.testing.assert_allclose(got[finite], exact[finite], rtol=0, atol=1.0001e-4 + 1e-12)
