"""FID statistics from dask arrays: per-block statistics on the workers, merged in a tree."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from fastdensity._backend._dask import tree_reduce  # noqa: E402
from fastdensity.metrics import FeatureStatistics, fid  # noqa: E402

EPS = np.finfo(np.float64).eps


pytestmark = pytest.mark.usefixtures("threaded_scheduler")  # tests/dask/conftest.py


def _features(n, d, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + offset


def test_statistics_equal_the_in_memory_ones_far_from_the_origin():
    X = _features(3000, 12, seed=0, offset=1e4)
    stats = FeatureStatistics.from_features(da.from_array(X, chunks=((700, 0, 1100, 1200), (5, 7))))
    assert stats.n == 3000
    # The mean: both sums round at eps·|x| per addition (NumPy's pairwise sum: ~log2 n of them);
    # the covariance: Chan's merges of shifted statistics round relative to the spread, not to
    # the 1e4 offset
    np.testing.assert_allclose(stats.mean, X.mean(0), rtol=0, atol=4 * EPS * np.abs(X).max() * np.log2(len(X)))
    spread = np.sqrt(np.diag(np.cov(X, rowvar=False)))
    np.testing.assert_allclose(stats.cov, np.cov(X, rowvar=False), rtol=100 * 12 * EPS, atol=100 * 12 * EPS * spread.max() ** 2)


def test_fid_on_dask_equals_fid_in_memory():
    real, fake = _features(2500, 16, seed=1), _features(1800, 16, seed=2, offset=0.3)
    want = fid(real, fake)
    got = fid(da.from_array(real, chunks=400), da.from_array(fake, chunks=(500, 8)))
    np.testing.assert_allclose(got, want, rtol=1e-10)  # the bound


def test_dask_features_are_checked():
    with pytest.raises(ValueError, match="must be a 2-D array"):
        fid(da.ones(10, chunks=5), np.ones((10, 2)))
    X = da.from_array(_features(100, 3, seed=3), chunks=20)
    with pytest.raises(ValueError, match="chunk sizes are unknown"):
        fid(X[X[:, 0] > 0], np.ones((10, 3)))
    bad = _features(100, 3, seed=4)
    bad[57, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):  # raised by the block's own check
        fid(da.from_array(bad, chunks=20), _features(50, 3, seed=5))
    with pytest.raises(ValueError, match="at least 2 samples; got 1"):
        fid(da.from_array(np.ones((1, 3)), chunks=1), _features(50, 3, seed=6))


def test_tree_reduce_is_a_balanced_tree():
    leaves = [dask.delayed(0)] * 9
    depth = tree_reduce(leaves, lambda a, b: max(a, b) + 1).compute()
    assert depth == 4  # ceil(log2 9); a chain would be 8 deep
    with pytest.raises(ValueError, match="nothing to reduce"):
        tree_reduce([], max)
