"""KernelDensity centres the data before whitening: data far from the origin keep their digits."""

import numpy as np
import pytest

from fastdensity import KernelDensity


def _far_data(dtype):
    """Blobs of unit spread 1e4 from the origin, exactly representable in ``dtype``."""
    rng = np.random.default_rng(20261203)
    X = (1e4 + rng.normal(size=(400, 2))).astype(dtype)
    Q = (1e4 + rng.normal(size=(50, 2))).astype(dtype)
    return X, Q


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_float32_data_far_from_the_origin_score_as_in_float64(kernel):
    """Without centring, float32 whitened coordinates of size 1e4 / h carry an absolute error of
    about 1e4 / h · 6e-8 ≈ 2e-3 each, which moves log densities by ~1e-2. Centred, the error is
    that of coordinates of size spread / h: a few float32 ulps of the log density."""
    X32, Q32 = _far_data(np.float32)
    kd32 = KernelDensity(kernel=kernel, bandwidth=0.3).fit(X32)
    kd64 = KernelDensity(kernel=kernel, bandwidth=0.3).fit(X32.astype(np.float64))
    got = kd32.score_samples(Q32)
    want = kd64.score_samples(Q32.astype(np.float64))
    assert got.dtype == np.float32
    finite = np.isfinite(want)
    assert np.array_equal(finite, np.isfinite(got))
    # float32 rounding of centred coordinates of size ≤ ~5/h, squared distances summed over n rows
    eps = np.finfo(np.float32).eps
    error = np.abs(got[finite].astype(np.float64) - want[finite])
    assert np.max(error / (1 + np.abs(want[finite]))) <= 200 * eps


def test_centring_changes_float64_results_only_by_rounding():
    """Data near the origin: the same densities as the difference-only formula, to float64 rounding."""
    rng = np.random.default_rng(7)
    X, Q = rng.normal(size=(300, 3)), rng.normal(size=(20, 3))
    h = 0.5
    d2 = ((Q[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    want = np.log(np.exp(-d2 / (2 * h * h)).mean(axis=1)) - 1.5 * np.log(2 * np.pi * h * h)
    got = KernelDensity(bandwidth=h).fit(X).score_samples(Q)
    np.testing.assert_allclose(got, want, rtol=1e3 * np.finfo(np.float64).eps)


def test_queries_that_overflow_when_centred_get_minus_inf():
    X = np.array([[-1e308], [-0.99e308]])
    kd = KernelDensity(bandwidth=1e150).fit(X)  # |X| / h = 1e158: finite whitened training data
    out = kd.score_samples(np.array([[1.7e308], [-1e308]]))  # 1.7e308 − centre overflows
    assert out[0] == -np.inf and np.isfinite(out[1])
