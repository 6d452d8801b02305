"""The separable gaussian window (``_fft_grid.separable_factors``): its spectrum from d 1-D FFTs
gives the same convolution as the 2-D/3-D transform of the full window, to the FFT's rounding."""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity import KernelDensity
from fastdensity.kde._fft_bound import profile
from fastdensity.kde._fft_evaluate import plan_grid
from fastdensity.kde._fft_grid import binned_weights, convolve, fft_rounding, offset_radii, separable_factors


@pytest.mark.parametrize("d", [2, 3])
def test_separable_spectrum_equals_the_full_one(d):
    rng = np.random.default_rng(40 + d)
    X = rng.standard_normal((3000, d)) * np.arange(1, d + 1)
    est = KernelDensity(bandwidth=list(0.2 * np.arange(1, d + 1)), algorithm="exact").fit(X)
    plan = plan_grid(est, 24 if d == 3 else 64, None)
    counts = binned_weights(est, plan["ext_lo"], plan["step"], plan["ext_shape"])
    window = profile("gaussian", offset_radii(plan["A"], plan["step"], plan["half"]))
    factors = separable_factors("gaussian", plan["A"], plan["step"], plan["half"])
    assert factors is not None and len(factors) == d
    outer = factors[0]
    for f in factors[1:]:
        outer = np.multiply.outer(outer, f)
    # the product of the factors is the window to a few ulps of its peak (each exp is correctly
    # rounded to within an ulp; d − 1 products)
    np.testing.assert_allclose(outer, window, rtol=0, atol=8 * d * np.finfo(np.float64).eps)
    (full,) = convolve(np, counts, [window], plan["padded"], plan["half"])
    (sep,) = convolve(np, counts, [window], plan["padded"], plan["half"], [factors])
    # both within the FFT's rounding floor of the exact convolution, and the window difference
    # above adds at most its size times Σ c = 1
    floor = fft_rounding(plan["padded"], np, counts, window)
    assert np.max(np.abs(full - sep)) <= 2 * floor + 8 * d * np.finfo(np.float64).eps


def test_no_factors_for_a_full_matrix_another_kernel_or_1d():
    A = np.array([[1.0, 0.0], [0.3, 2.0]])
    assert separable_factors("gaussian", A, np.array([0.1, 0.1]), (3, 3)) is None
    assert separable_factors("biweight", np.eye(2), np.array([0.1, 0.1]), (3, 3)) is None
    assert separable_factors("gaussian", np.eye(1), np.array([0.1]), (3,)) is None
