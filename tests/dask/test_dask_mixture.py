"""GaussianMixture.fit on a dask array (mixture/_engine_dask.py): EM whose rows stay on the
workers, against the in-memory fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from fastdensity import GaussianMixture  # noqa: E402

# The same EM from the same start; only the order of the sums differs (per block, then a tree),
# each iteration's parameters move by rounding of ~n·eps relative, and EM contracts near its
# fixed point rather than amplifying that. The bound: 1e-10 relative.
RTOL = 1e-10
COV_TYPES = ["full", "tied", "diag", "spherical"]


pytestmark = pytest.mark.usefixtures("threaded_scheduler")  # tests/dask/conftest.py


def _blobs(n=3000, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * d, [6.0] + [0.0] * (d - 1), [0.0, 6.0] + [0.0] * (d - 2)])
    X = centres[rng.integers(0, 3, n)] + rng.standard_normal((n, d)) @ np.diag(np.linspace(0.6, 1.4, d))
    return X + 100.0  # away from the origin: the centring matters


def _start(X, k=3, cov_type="full"):
    """Initial parameters from a quick in-memory fit, so both fits start from the same point."""
    g = GaussianMixture(n_components=k, covariance_type=cov_type, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g.fit(X)
    return dict(weights_init=g.weights_, means_init=g.means_, precisions_init=g.precisions_)


def _fit(X, sample_weight=None, **params):
    g = GaussianMixture(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return g.fit(X, sample_weight=sample_weight)


def _assert_same_fit(a, b, rtol=RTOL):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=0, err_msg=name)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=rtol)
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("weights", [None, "numpy", "dask"])
def test_from_the_same_start_the_fit_equals_the_in_memory_fit(cov_type, weights):
    X = _blobs(seed=1)
    w = None if weights is None else np.random.default_rng(2).uniform(0.0, 3.0, len(X))
    given = w if weights != "dask" else da.from_array(w, chunks=700)
    params = dict(n_components=3, covariance_type=cov_type, max_iter=25, tol=0.0, **_start(X, cov_type=cov_type))
    in_memory = _fit(X, w, **params)
    on_dask = _fit(da.from_array(X, chunks=(700, 2)), given, **params)
    _assert_same_fit(on_dask, in_memory)
    assert isinstance(on_dask.means_, np.ndarray) and on_dask.n_features_in_ == 3


def test_one_compute_per_iteration():
    from dask.callbacks import Callback

    X = _blobs(seed=3)
    computes = []
    with Callback(start=lambda dsk: computes.append(len(dsk))):
        g = _fit(da.from_array(X, chunks=500), n_components=3, max_iter=7, tol=0.0, **_start(X))
    # one pass for the centre (and the data's finiteness check), then one per EM iteration
    assert len(computes) == 1 + g.n_iter_ == 8


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random_from_data"])
def test_initialisations_find_the_in_memory_optimum(init):
    X = _blobs(n=4000, seed=4)
    in_memory = _fit(X, n_components=3, init_params=init, tol=1e-10, max_iter=500, random_state=0)
    on_dask = _fit(da.from_array(X, chunks=1000), n_components=3, init_params=init, tol=1e-10, max_iter=500,
                   random_state=0)
    order = lambda g: np.argsort(g.means_[:, 0] + 10 * g.means_[:, 1])  # noqa: E731
    # well-separated blobs: one optimum, reached by both to the tolerance's accuracy
    np.testing.assert_allclose(on_dask.means_[order(on_dask)], in_memory.means_[order(in_memory)], rtol=1e-6)
    np.testing.assert_allclose(on_dask.lower_bound_, in_memory.lower_bound_, rtol=1e-8)


def test_partial_fit_on_dask_batches_equals_numpy_batches():
    X = _blobs(seed=5)
    params = dict(n_components=3, **_start(X))
    a, b = GaussianMixture(**params), GaussianMixture(**params)
    for batch in np.array_split(X, 3):
        a.partial_fit(batch)
        b.partial_fit(da.from_array(batch, chunks=300))
    _assert_same_fit(b, a)


def test_bad_training_arrays_are_refused():
    X = _blobs(seed=6)
    bad = X.copy()
    bad[1234, 1] = np.nan
    with pytest.raises(ValueError, match=r"Input X contains NaN or infinity \(1 values\)"):
        _fit(da.from_array(bad, chunks=500), n_components=3)
    lazy = da.from_array(X, chunks=500)
    with pytest.raises(ValueError, match="chunk sizes are unknown"):
        _fit(lazy[lazy[:, 0] > 100], n_components=3)
    with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
        _fit(lazy, -np.ones(len(X)), n_components=3)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(3000,\)"):
        _fit(lazy, np.ones(10), n_components=3)
    with pytest.raises(TypeError, match="backend='cuda' with a dask array is not supported"):
        _fit(lazy, n_components=3, backend="cuda")
    with pytest.raises(NotImplementedError, match='init_params="random"'):
        _fit(lazy, n_components=3, init_params="random")
    with pytest.raises(NotImplementedError, match="fit_predict on a dask array"):
        GaussianMixture(n_components=3).fit_predict(lazy)
    fitted = _fit(lazy, n_components=3, max_iter=3)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3 features"):
        fitted.partial_fit(da.from_array(X[:, :2], chunks=500))
