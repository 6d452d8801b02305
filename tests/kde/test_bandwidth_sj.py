"""bandwidth="sj": R's bw.SJ against R's own published outputs, against an exact (unbinned) evaluation
of the same equations, its weights and its conversion to the kernels."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import brentq

from fastdensity import KernelDensity
from fastdensity.datasets import load_old_faithful
from fastdensity.kde._bandwidth_sj import _pair_counts, _zeroin, sj_bandwidth
from fastdensity.kde._kernels import kernel_coordinate_variance

# R's datasets::precip (70 US cities, inches per year), from R's src/library/datasets/data/precip.R.
PRECIP = np.array([
    67, 54.7, 7, 48.5, 14, 17.2, 20.7, 13, 43.4, 40.2, 38.9, 54.5, 59.8, 48.3, 22.9, 11.5, 34.4,
    35.1, 38.7, 30.8, 30.6, 43.1, 56.8, 40.8, 41.8, 42.5, 31, 31.7, 30.2, 25.9, 49.2, 37, 35.9, 15,
    30.2, 7.2, 36.2, 45.5, 7.8, 33.4, 36.1, 40.2, 42.7, 42.5, 16.2, 39, 35, 37, 31.4, 37.6, 39.9,
    36.2, 42.8, 46.4, 24.7, 49.1, 46, 35.9, 7.8, 48.2, 15.2, 32.5, 44.7, 42.6, 38.8, 17.4, 40.8,
    29.1, 14.6, 59.2,
])


# ------------------------------------------------------------------------ published values


def test_precip_matches_r_regression_test_output():
    # R's own regression test src/library/stats/tests/bandwidth.R, its saved output
    # bandwidth.Rout.save (R-devel 2019-03-21 r76255, options(digits = 5)):
    #   bw.SJ(precip, method = "dpi") = 4.0220,  bw.SJ(precip, method = "ste") = 3.9318.
    # Half a unit of the last printed digit is the tolerance.
    assert abs(sj_bandwidth(PRECIP, method="dpi") - 4.0220) <= 0.5e-4
    assert abs(sj_bandwidth(PRECIP, method="ste") - 3.9318) <= 0.5e-4
    assert sj_bandwidth(PRECIP) == sj_bandwidth(PRECIP, method="ste")


def test_faithful_eruptions_matches_r_density_example():
    # R's stats examples output tests/Examples/stats-Ex.Rout.save, example(density):
    #   d <- density(faithful$eruptions, bw = "sj")  prints  Bandwidth 'bw' = 0.14
    # (print.density's formatC: 4 significant digits). The shipped Old Faithful is R's faithful.
    eruptions = load_old_faithful()[:, 0]
    assert abs(sj_bandwidth(eruptions) - 0.1400) <= 0.5e-4


# ------------------------------------------------------------- exact (unbinned) evaluation


def _exact_sj(x, method):
    """The same equations with ψ₄, ψ₆ from every pair exactly (no cells, no cut-off) and the root
    solved to 1e-14: an independent oracle for the binned code."""
    n = x.size
    D = (x[:, None] - x[None, :]).ravel()

    def psi(r, g):
        u = D / g
        phi = np.exp(-u * u / 2) / math.sqrt(2 * math.pi)
        poly = u**4 - 6 * u**2 + 3 if r == 4 else u**6 - 15 * u**4 + 45 * u**2 - 15
        return np.sum(phi * poly) / (n * (n - 1) * g ** (r + 1))

    q1, q3 = np.quantile(x, [0.25, 0.75])  # R's type 7 is NumPy's default
    s = min(np.std(x, ddof=1), (q3 - q1) / 1.349)
    a, b, c1 = 1.24 * s * n ** (-1 / 7), 1.23 * s * n ** (-1 / 9), 1 / (2 * math.sqrt(math.pi) * n)
    td = -psi(6, b)
    if method == "dpi":
        return (c1 / psi(4, (2.394 / (n * td)) ** (1 / 7))) ** 0.2
    alpha2 = 1.357 * (psi(4, a) / td) ** (1 / 7)
    hmax = 1.144 * s * n ** (-0.2)
    return brentq(lambda h: (c1 / psi(4, alpha2 * h ** (5 / 7))) ** 0.2 - h, 0.05 * hmax, 2 * hmax,
                  xtol=1e-14, rtol=1e-13)


@pytest.mark.parametrize("method", ["ste", "dpi"])
@pytest.mark.parametrize("dist", ["gamma", "normal", "bimodal"])
def test_binned_equals_exact_evaluation_to_the_binning_precision(method, dist):
    rng = np.random.default_rng(31)
    x = {  # positive data: R's cells are then all of width d (the origin's double cell unused)
        "gamma": rng.gamma(2.0, 1.0, 300) + 0.5,
        "normal": rng.standard_normal(300) + 10.0,
        "bimodal": np.concatenate([rng.normal(3.0, 0.5, 150), rng.normal(6.0, 1.0, 150)]),
    }[dist]
    ours = sj_bandwidth(x, method=method, tol=1e-13)
    exact = _exact_sj(x, method)
    # Binning moves every pair distance by less than one cell d, so ψ̂ moves relatively by at most
    # O(d / g) with pilots g > h, and h ∝ ψ̂^(−1/5) damps that further: |Δh| / h ≤ d / h.
    d = np.ptp(x) * 1.01 / 1000
    assert abs(ours / exact - 1) <= d / exact


def test_pair_counts_equal_rs_pairwise_loop_with_weights():
    # R's C_bw_den: for i > j, cnt[|trunc(x_i / d) − trunc(x_j / d)|] += 1; here with w_i w_j, on
    # data straddling 0 (where C's truncation makes the cell at the origin twice as wide).
    rng = np.random.default_rng(32)
    x = rng.normal(0.0, 1.0, 120)
    w = rng.uniform(0.2, 2.0, 120)
    d, counts = _pair_counts(x, w, 50)
    cells = np.trunc(x / d).astype(int)
    brute = np.zeros(50)
    for i in range(1, x.size):
        for j in range(i):
            brute[abs(cells[i] - cells[j])] += w[i] * w[j]
    assert d == (x.max() - x.min()) * 1.01 / 50
    np.testing.assert_allclose(counts, brute, rtol=1e-13, atol=1e-13 * brute.max())


def test_zeroin_finds_roots_to_its_tolerance():
    f = math.cos
    root = _zeroin(f, 1.0, 2.0, f(1.0), f(2.0), 1e-3)
    assert abs(root - math.pi / 2) <= 4 * np.finfo(float).eps * math.pi / 2 + 1e-3
    assert _zeroin(f, 1.0, 2.0, f(1.0), f(2.0), 0.0) == pytest.approx(math.pi / 2, abs=1e-15)


# ------------------------------------------------------------------------------ properties


def test_normal_data_near_the_normal_reference_optimum():
    # For N(0, 1) the AMISE-optimal gaussian bandwidth is (4 / (3 n))^(1/5); SJ's relative error
    # is O(n^(−5/14)) ≈ 0.037 at n = 10⁴ (Sheather & Jones 1991): 10% is ~3 of those.
    n = 10_000
    x = np.random.default_rng(33).standard_normal(n)
    assert sj_bandwidth(x) == pytest.approx((4 / (3 * n)) ** 0.2, rel=0.10)
    assert sj_bandwidth(x, method="dpi") == pytest.approx((4 / (3 * n)) ** 0.2, rel=0.10)


def test_weights_equal_scaled_and_zero():
    rng = np.random.default_rng(34)
    x = rng.gamma(3.0, 1.0, 800)
    h = sj_bandwidth(x)
    assert sj_bandwidth(x, np.full(x.size, 2.5)) == h  # equal weights: exactly unweighted
    w = rng.uniform(0.1, 3.0, x.size)
    assert sj_bandwidth(x, 1e3 * w) == pytest.approx(sj_bandwidth(x, w), rel=1e-12)
    x_more = np.concatenate([x, [-50.0, 80.0]])
    assert sj_bandwidth(x_more, np.r_[np.ones(x.size), 0.0, 0.0]) == h  # zero weight: dropped
    # Affine maps move R's cells (trunc(x / d) is not shift-invariant): equal to the binning's d / h.
    d = np.ptp(x) * 1.01 / 1000
    assert sj_bandwidth(1e-3 * x + 7.0) == pytest.approx(1e-3 * h, rel=d / h)


def test_weighted_follows_the_weighted_distribution():
    # Importance weights turn a N(0, 2²) sample into a N(0, 1) one: the bandwidth follows the target
    # (the normal-reference optimum at Kish's effective size), within SJ's error at that size.
    rng = np.random.default_rng(35)
    x = rng.normal(0.0, 2.0, 40_000)
    w = np.exp(-0.5 * x**2) / np.exp(-0.5 * (x / 2.0) ** 2)
    neff = w.sum() ** 2 / (w * w).sum()
    assert sj_bandwidth(x, w) == pytest.approx((4 / (3 * neff)) ** 0.2, rel=0.15)


# ------------------------------------------------------------------------ estimator, errors


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "tophat"])
def test_kernel_density_sj_converts_to_the_kernel(kernel):
    x = np.random.default_rng(36).standard_normal((500, 1))
    sigma = sj_bandwidth(x[:, 0])
    kde = KernelDensity(bandwidth="sj", kernel=kernel).fit(x)
    np.testing.assert_allclose(kde.bandwidth_matrix_, [[sigma**2 / kernel_coordinate_variance(kernel, 1)]],
                               rtol=1e-14)
    assert kde.bandwidth_ == pytest.approx(math.sqrt(kde.bandwidth_matrix_[0, 0]), rel=1e-15)
    w = np.random.default_rng(37).uniform(0.5, 2.0, 500)
    weighted = KernelDensity(bandwidth="sj", kernel=kernel).fit(x, sample_weight=w)
    np.testing.assert_allclose(weighted.bandwidth_matrix_[0, 0] * kernel_coordinate_variance(kernel, 1),
                               sj_bandwidth(x[:, 0], w) ** 2, rtol=1e-14)


def test_errors_name_the_problem():
    X2 = np.random.default_rng(38).standard_normal((50, 2))
    with pytest.raises(ValueError, match=r'bandwidth="sj" is for 1-D data; X has 2 features'):
        KernelDensity(bandwidth="sj").fit(X2)
    with pytest.raises(ValueError, match=r'"sj" is for 1-D data only'):
        sj_bandwidth(X2)
    with pytest.raises(ValueError, match=r"method must be one of \('ste', 'dpi'\); got 'foo'"):
        sj_bandwidth(PRECIP, method="foo")
    with pytest.raises(ValueError, match=r"nb must be an integer ≥ 2; got 1"):
        sj_bandwidth(PRECIP, nb=1)
    with pytest.raises(ValueError, match=r"tol must be a positive finite number or None; got -1"):
        sj_bandwidth(PRECIP, tol=-1)
    with pytest.raises(ValueError, match=r"at least 2 distinct data values"):
        sj_bandwidth(np.full(10, 3.0))
    with pytest.raises(ValueError, match="NaN or infinite"):
        sj_bandwidth(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="empty"):
        sj_bandwidth(np.array([]))


def test_no_warning_on_continuous_data():
    x = np.random.default_rng(39).lognormal(0.0, 0.7, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sj_bandwidth(x)
