"""KID and PRDC of feature sets held as dask arrays equal the in-memory results."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from dask.callbacks import Callback  # noqa: E402

from fastdensity.metrics import kid, polynomial_mmd2, prdc  # noqa: E402
from fastdensity.metrics import _kid_dask  # noqa: E402

# KID: the same subsets (the same draws from the same generator), gathered in the same row order,
# and the same float64 code on C-contiguous copies: the same numbers; 1e-10 is the bound.
RTOL = 1e-10


pytestmark = pytest.mark.usefixtures("threaded_scheduler")  # tests/dask/conftest.py


def _features(n, d, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) + offset


class _Tasks(Callback):
    def __init__(self):
        super().__init__()
        self.tasks = 0

    def _pretask(self, key, dsk, state):
        self.tasks += 1


# ----------------------------------------------------------------------------------------- KID
@pytest.mark.parametrize("which", ["real", "fake", "both"])
def test_kid_on_dask_equals_in_memory(which, monkeypatch):
    real, fake = _features(1500, 12, seed=0), _features(1300, 12, seed=1, offset=0.2)
    want = kid(real, fake, subsets=37, subset_size=200, random_state=5)
    monkeypatch.setattr(_kid_dask, "SUBSET_BATCH", 10)  # several batches, the last one partial
    lazy_real = da.from_array(real, chunks=((400, 0, 600, 500), (5, 7))) if which != "fake" else real
    lazy_fake = da.from_array(fake, chunks=300) if which != "real" else fake
    got = kid(lazy_real, lazy_fake, subsets=37, subset_size=200, random_state=5)
    np.testing.assert_allclose(got.values, want.values, rtol=RTOL)
    np.testing.assert_allclose([got.mean, got.std], [want.mean, want.std], rtol=RTOL)


def test_kid_kernel_parameters_and_integer_features():
    rng = np.random.default_rng(2)
    real, fake = rng.integers(-5, 6, (400, 6)), rng.integers(-4, 7, (350, 6))
    kw = dict(subsets=6, subset_size=100, degree=2, gamma=0.5, coef0=0.25, random_state=np.random.default_rng(3))
    want = kid(real, fake, **{**kw, "random_state": np.random.default_rng(3)})
    got = kid(da.from_array(real, chunks=90), da.from_array(fake, chunks=120), **kw)
    np.testing.assert_allclose(got.values, want.values, rtol=RTOL)


def test_kid_dask_input_is_checked_before_any_task():
    X = da.from_array(_features(300, 4, seed=4), chunks=50)
    Y = _features(200, 4, seed=5)
    with _Tasks() as seen:
        with pytest.raises(ValueError, match="features_real: the dask array's chunk sizes are unknown"):
            kid(X[X[:, 0] > 0], Y, subset_size=50)
        with pytest.raises(ValueError, match="features_real has 3 features and features_fake 4"):
            kid(X[:, :3], Y, subset_size=50)
        with pytest.raises(ValueError, match="subset_size = 250 is larger than the feature sets"):
            kid(X, Y, subset_size=250)
        with pytest.raises(ValueError, match="must be a 2-D array"):
            kid(da.ones(10, chunks=5), Y)
        with pytest.raises(TypeError, match="complex arrays are not supported"):
            kid(X.astype(np.complex128), Y, subset_size=50)
        with pytest.raises(TypeError, match="polynomial_mmd2 takes in-memory arrays"):
            polynomial_mmd2(X, Y)
    assert seen.tasks == 0


def test_kid_refuses_non_finite_values_outside_the_subsets():
    real = _features(300, 3, seed=6)
    real[299, 2] = np.inf
    with pytest.raises(ValueError, match="features_real contains NaN or infinite values"):
        kid(real, _features(300, 3, seed=7), subsets=2, subset_size=10, random_state=0)  # in memory
    with pytest.raises(ValueError, match="features_real contains NaN or infinite values"):
        kid(da.from_array(real, chunks=100), _features(300, 3, seed=7), subsets=2, subset_size=10, random_state=0)


# ---------------------------------------------------------------------------------------- PRDC
@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
def test_prdc_on_dask_equals_in_memory(algorithm):
    real, fake = _features(2200, 5, seed=8), _features(1700, 5, seed=9, offset=0.3)
    want = prdc(real, fake, nearest_k=5, algorithm=algorithm)
    for lazy_real, lazy_fake in (
        (da.from_array(real, chunks=((500, 0, 900, 800), (2, 3))), da.from_array(fake, chunks=400)),
        (da.from_array(real, chunks=700), fake),
        (real, da.from_array(fake, chunks=((3, 1697), 5))),  # a shard smaller than k + 1
    ):
        got = prdc(lazy_real, lazy_fake, nearest_k=5, batch_size=64, algorithm=algorithm)
        # Counts of exact decisions (the in-memory ball_counts per shard, the in-memory radii):
        # the same integers, divided as the in-memory means divide them: equal floats.
        assert got == want


def test_prdc_high_dimension_on_dask():
    real, fake = _features(900, 40, seed=10), _features(800, 40, seed=11, offset=0.1)
    assert prdc(da.from_array(real, chunks=250), da.from_array(fake, chunks=300), nearest_k=3) == \
        prdc(real, fake, nearest_k=3)


def test_prdc_with_integer_features_and_ties():
    # Integer grid points: many equal distances and points exactly on a radius, decided exactly
    rng = np.random.default_rng(12)
    real, fake = rng.integers(0, 6, (500, 3)), rng.integers(0, 6, (450, 3))
    want = prdc(real, fake, nearest_k=4)
    assert prdc(da.from_array(real, chunks=120), da.from_array(fake, chunks=100), nearest_k=4) == want


def test_prdc_dask_input_is_checked():
    X = da.from_array(_features(300, 4, seed=13), chunks=50)
    Y = _features(200, 4, seed=14)
    with _Tasks() as seen:
        with pytest.raises(ValueError, match="real_features: the dask array's chunk sizes are unknown"):
            prdc(X[X[:, 0] > 0], Y)
        with pytest.raises(ValueError, match="real_features has 3 features and fake_features 4"):
            prdc(X[:, :3], Y)
        with pytest.raises(ValueError, match="fake_features needs at least 6 samples; got 5"):
            prdc(X, da.from_array(Y[:5], chunks=2))
        with pytest.raises(ValueError, match="nearest_k"):
            prdc(X, Y, nearest_k=0)
    assert seen.tasks == 0
    bad = _features(200, 4, seed=15)
    bad[123, 0] = np.nan
    with pytest.raises(ValueError, match="fake_features contains NaN or infinite values"):
        prdc(X, da.from_array(bad, chunks=60))


# ----------------------------------------------------------------- a real cluster (2 processes)
@pytest.mark.slow
def test_kid_and_prdc_on_worker_processes(client):
    real, fake = _features(3000, 16, seed=16), _features(2500, 16, seed=17, offset=0.2)
    lazy_real, lazy_fake = da.from_array(real, chunks=800), da.from_array(fake, chunks=700)
    assert prdc(lazy_real, lazy_fake, nearest_k=5) == prdc(real, fake, nearest_k=5)
    got = kid(lazy_real, lazy_fake, subsets=20, subset_size=300, random_state=1)
    want = kid(real, fake, subsets=20, subset_size=300, random_state=1)
    np.testing.assert_allclose(got.values, want.values, rtol=RTOL)
