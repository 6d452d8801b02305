"""column_extremes: the per-column reductions agree with NumPy's axis-0 ones."""

import numpy as np
import pytest

from fastdensity._backend._columns import column_extremes


@pytest.mark.parametrize("shape", [(1, 1), (7, 2), (1000, 3), (50, 31), (50, 32), (20, 70)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_as_numpy(shape, dtype):
    X = np.random.default_rng(sum(shape)).normal(size=shape).astype(dtype) * 1e300 ** (dtype == np.float64)
    low, high = column_extremes(X)
    np.testing.assert_array_equal(low, X.min(axis=0))
    np.testing.assert_array_equal(high, X.max(axis=0))
    assert low.dtype == X.dtype and high.shape == (shape[1],)


def test_non_contiguous_columns():
    X = np.random.default_rng(1).normal(size=(40, 6))[::3, ::2]
    low, high = column_extremes(X)
    np.testing.assert_array_equal(low, X.min(axis=0))
    np.testing.assert_array_equal(high, X.max(axis=0))
