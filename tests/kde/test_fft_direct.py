"""The separable direct convolution of the binned grid (``_fft_direct_cpu``) and its use by
``KernelDensity.evaluate_grid``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import convolve as scipy_convolve
from scipy.special import logsumexp

from fastdensity import KernelDensity, threads
from fastdensity.kde import _fft_direct_cpu
from fastdensity.kde._fft_bound import NEGLIGIBLE, profile
from fastdensity.kde._fft_direct_cpu import convolve_separable, direct_cost, relative_rounding
from fastdensity.kde._fft_evaluate import direct_is_cheaper, plan_grid
from fastdensity.kde._fft_grid import binned_weights, fft_rounding, offset_radii, separable_factors


def _factors(rng, half):
    return [np.exp(-0.5 * (np.arange(-L, L + 1) * rng.uniform(0.1, 0.5)) ** 2) for L in half]


@pytest.mark.parametrize("shape,half,start,out", [
    ((50,), (7,), (0,), (50,)),  # the whole grid: the window runs off both ends
    ((300,), (299,), (5,), (290,)),  # wider than the grid
    ((40, 33), (5, 12), (3, 0), (30, 33)),
    ((9, 8, 7), (3, 2, 6), (1, 2, 0), (7, 5, 7)),
])
def test_direct_convolution_equals_scipy_within_its_relative_bound(shape, half, start, out):
    rng = np.random.default_rng(sum(shape))
    counts = rng.uniform(size=shape)
    counts[counts < 0.4] = 0.0
    factors = _factors(rng, half)
    window = factors[0]
    for f in factors[1:]:
        window = np.multiply.outer(window, f)
    full = scipy_convolve(counts, window, mode="full", method="direct")  # node g at g + L
    ref = full[tuple(slice(L + s, L + s + n) for L, s, n in zip(half, start, out))]
    got = convolve_separable(counts, factors, half, start, out)
    assert got.shape == tuple(out)
    # every term ≥ 0: relative error of each node ≤ (Σ (2L+1) + d) u, for either result
    np.testing.assert_allclose(got, ref, rtol=2 * relative_rounding(half), atol=0)
    assert direct_cost(shape, out, half) > 0


def test_direct_convolution_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(4)
    counts = rng.uniform(size=(200, 180))
    half = (30, 25)
    factors = _factors(rng, half)
    assert direct_cost(counts.shape, (150, 150), half) >= _fft_direct_cpu.SERIAL_BELOW  # parallel passes
    with threads(1):
        one = convolve_separable(counts, factors, half, (20, 10), (150, 150))
    with threads(2):
        two = convolve_separable(counts, factors, half, (20, 10), (150, 150))
    assert np.array_equal(one, two)


def test_a_factor_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="factor 1 must have 5 taps"):
        convolve_separable(np.ones((4, 4)), [np.ones(3), np.ones(4)], (1, 2), (0, 0), (4, 4))


def _log_binned_sum_brute(counts, plan, log_window_of):
    """log Σ_m c_m k(g − m) at every node g of the output grid, in log space over all occupied m."""
    occupied = np.argwhere(counts > 0)
    log_c = np.log(counts[tuple(occupied.T)])
    nodes = np.argwhere(np.ones(plan["shape"], dtype=bool)) + plan["below"]
    out = np.empty(len(nodes))
    for i, g in enumerate(nodes):
        out[i] = logsumexp(log_c + log_window_of((g - occupied) * plan["step"]))
    return out.reshape(plan["shape"])


@pytest.mark.parametrize("d,bandwidth,grid,bounds", [(1, 0.15, 160, (-6.0, 6.0)),
                                                     (2, [0.3, 0.2], (40, 36), [(-6.0, 6.0), (-5.0, 5.0)])])
def test_evaluate_grid_keeps_relative_accuracy_in_the_tails(d, bandwidth, grid, bounds):
    # The direct path has no FFT rounding floor: far-tail nodes are finite and accurate. Against
    # the binned sum in log space over every occupied node, each node is within its relative
    # rounding plus the kernel cut (2^-60 of the unit peak, absolute: Σ c = 1).
    rng = np.random.default_rng(d)
    X = rng.standard_normal((4000, d))
    kde = KernelDensity(bandwidth=bandwidth).fit(X)
    plan = plan_grid(kde, grid, bounds)  # out to where the density is far below the FFT's floor
    assert direct_is_cheaper(plan)
    counts = binned_weights(kde, plan["ext_lo"], plan["step"], plan["ext_shape"])
    A = plan["A"]
    ref = _log_binned_sum_brute(counts, plan, lambda u: -0.5 * np.sum((u @ A.T) ** 2, axis=1))
    coords, log_p = kde.evaluate_grid(grid, bounds=bounds)
    got = log_p - plan["log_cn"]
    finite = np.isfinite(got)
    v, r = np.exp(got[finite]), np.exp(ref[finite])
    assert np.all(np.abs(v - r) <= 4 * relative_rounding(plan["half"]) * r + NEGLIGIBLE)
    assert np.all(np.exp(ref[~finite]) <= 2 * NEGLIGIBLE)  # only what the cut cannot resolve is -inf
    # and the tails the FFT path would have sent to -inf are there
    window = profile("gaussian", offset_radii(A, plan["step"], plan["half"]))
    fft_floor = fft_rounding(plan["padded"], np, counts, window)
    assert np.sum(finite & (np.exp(ref) < fft_floor)) > 0


def test_the_choice_falls_back_to_fft_for_a_wide_window():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((2000, 2))
    narrow = KernelDensity(bandwidth=0.1).fit(X)
    wide = KernelDensity(bandwidth=3.0).fit(X)  # the window spans the whole padded grid
    assert direct_is_cheaper(plan_grid(narrow, 256, None))
    assert not direct_is_cheaper(plan_grid(wide, 256, None))
    # both paths agree with the exact engine at the bulk of the grid
    for kde in (narrow, wide):
        coords, log_p = kde.evaluate_grid(256)
        nodes = np.stack([g.ravel() for g in np.meshgrid(*coords, indexing="ij")], axis=1)
        exact = KernelDensity(bandwidth=kde.bandwidth, algorithm="exact").fit(X).score_samples(nodes)
        big = exact > np.max(exact) - 5.0
        # linear binning's own error: about (δ/h)² |r² − 1| / 8 in log, δ/h ≤ 0.35 here
        assert np.max(np.abs(log_p.ravel()[big] - exact[big])) < 0.05


def test_a_full_bandwidth_matrix_is_not_separable():
    X = np.random.default_rng(8).standard_normal((500, 2))
    kde = KernelDensity(bandwidth=np.array([[0.1, 0.03], [0.03, 0.2]])).fit(X)
    plan = plan_grid(kde, 32, None)
    assert separable_factors(kde.kernel, plan["A"], plan["step"], plan["half"]) is None
