"""Dask arrays of queries (fastdensity/_backend/_dask.py) on the threaded scheduler: every result
equals the in-memory one, comes back lazy with the queries' row chunks, and bad arrays are
refused before any task is built."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from fastdensity import GaussianMixture, KernelDensity, KNNDensity  # noqa: E402
from fastdensity.parametric import MultivariateNormal, Normal  # noqa: E402

# Each row's result is computed by the same code on the same numbers whether its chunk is the
# whole array or a part (the sums run per query over the training points in a fixed order), so
# the results agree to a few ulps at most; the bound is 1e-10 relative.
RTOL = 1e-12


pytestmark = pytest.mark.usefixtures("threaded_scheduler")  # tests/dask/conftest.py


def _data(n=600, m=500, d=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    Q = (rng.standard_normal((m, d)) * 1.5).astype(dtype)
    return X, Q


def _lazy(Q, rows=(130, 200, 170), cols=None):
    return da.from_array(Q, chunks=(rows, cols or Q.shape[1]))


def _estimator_keys(lazy):
    return [k for k in dict(lazy.__dask_graph__()) if str(k if isinstance(k, str) else k[0]).startswith("fastdensity-")]


FITTED = [
    lambda X: KernelDensity(bandwidth=0.5).fit(X),
    lambda X: KernelDensity(bandwidth="scott", kernel="epanechnikov").fit(X, sample_weight=np.linspace(0.5, 2, len(X))),
    lambda X: KNNDensity(n_neighbors=7).fit(X),
    lambda X: GaussianMixture(n_components=3, random_state=0).fit(X),
    lambda X: MultivariateNormal().fit(X),
]
IDS = ["kde", "kde-weighted-compact", "knn", "gmm", "mvn"]


@pytest.mark.parametrize("make", FITTED, ids=IDS)
def test_score_samples_equals_in_memory_with_the_row_chunks(make):
    X, Q = _data()
    est = make(X)
    lazy = est.score_samples(_lazy(Q))
    assert isinstance(lazy, da.Array)
    assert lazy.chunks == ((130, 200, 170),)
    assert len(_estimator_keys(lazy)) == 1  # the fitted state is one key, not one per task
    want = est.score_samples(Q)
    got = lazy.compute()
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=RTOL)


@pytest.mark.parametrize("make", FITTED, ids=IDS)
def test_score_is_the_in_memory_score(make):
    X, Q = _data(seed=1)
    est = make(X)
    np.testing.assert_allclose(est.score(_lazy(Q)), est.score(Q), rtol=RTOL)


def test_feature_chunks_are_joined_and_float32_stays_float32():
    X, Q = _data(d=4, dtype=np.float32)
    est = KernelDensity(bandwidth=0.7).fit(X)
    got = est.score_samples(_lazy(Q, cols=(2, 2))).compute()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, est.score_samples(Q), rtol=4 * np.finfo(np.float32).eps)


def test_gmm_predict_and_predict_proba():
    X, Q = _data(seed=2)
    gmm = GaussianMixture(n_components=4, covariance_type="full", random_state=0).fit(X)
    labels = gmm.predict(_lazy(Q))
    proba = gmm.predict_proba(_lazy(Q))
    assert labels.chunks == ((130, 200, 170),) and proba.chunks == ((130, 200, 170), (4,))
    np.testing.assert_array_equal(labels.compute(), gmm.predict(Q))
    np.testing.assert_allclose(proba.compute(), gmm.predict_proba(Q), rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("weights_as", ["numpy", "dask"])
def test_weighted_mean_scores_with_numpy_or_dask_weights(weights_as):
    X, Q = _data(seed=3)
    w = np.random.default_rng(4).uniform(0.0, 2.0, len(Q))
    w[:20] = 0.0  # zero weights drop their rows
    given = w if weights_as == "numpy" else da.from_array(w, chunks=100)
    for est in (GaussianMixture(n_components=2, random_state=0).fit(X), MultivariateNormal().fit(X)):
        np.testing.assert_allclose(est.score(_lazy(Q), sample_weight=given), est.score(Q, sample_weight=w), rtol=RTOL)
    normal = Normal().fit(X[:, :1])
    q1 = _lazy(Q[:, :1])
    np.testing.assert_allclose(normal.aic(q1), normal.aic(Q[:, :1]), rtol=RTOL)
    np.testing.assert_allclose(normal.bic(q1, sample_weight=given), normal.bic(Q[:, :1], sample_weight=w), rtol=RTOL)


def test_bad_weights_are_refused():
    X, Q = _data(seed=5)
    gmm = GaussianMixture(n_components=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(500,\)"):
        gmm.score(_lazy(Q), sample_weight=np.ones(499))
    with pytest.raises(ValueError, match="finite and non-negative"):
        gmm.score(_lazy(Q), sample_weight=-np.ones(500))
    with pytest.raises(ValueError, match="positive sum"):
        gmm.score(_lazy(Q), sample_weight=np.zeros(500))


def test_the_fitted_state_is_one_task_not_part_of_every_task():
    """A distributed scheduler ships each task's own payload with it: the chunk tasks must name
    the estimator's key, not embed the fitted state (which would then travel once per chunk)."""
    import pickle

    X, Q = _data(n=5000, seed=9)
    kde = KernelDensity(bandwidth=0.5).fit(X)
    lazy = kde.score_samples(_lazy(Q, rows=(100,) * 5))
    graph = dict(lazy.__dask_graph__())
    (shipped,) = _estimator_keys(lazy)
    state_bytes = len(pickle.dumps(kde))
    assert state_bytes > 5000 * 3 * 8  # the training data are in it
    chunk_tasks = [k for k in graph if isinstance(k, tuple) and k[0] == lazy.name]
    assert len(chunk_tasks) == 5
    for key in chunk_tasks:
        assert len(pickle.dumps(graph[key])) < state_bytes / 20


def test_knn_leave_one_out_is_unchanged():
    X, _ = _data(seed=6)
    knn = KNNDensity(n_neighbors=5).fit(X)
    np.testing.assert_array_equal(knn.score_samples(), knn.score_samples(None))


class _Counting:
    """Counts the tasks the graph runs (a dask callback)."""

    def __init__(self):
        self.started = 0

    def __enter__(self):
        from dask.callbacks import Callback

        def start(key, dsk, state):
            self.started += 1

        self._cb = Callback(pretask=start)
        self._cb.__enter__()
        return self

    def __exit__(self, *exc):
        self._cb.__exit__(*exc)


def test_bad_queries_are_refused_before_any_task_runs():
    X, Q = _data(seed=7)
    kde = KernelDensity(bandwidth=0.5).fit(X)
    with _Counting() as counter:
        with pytest.raises(ValueError, match="X has 2 features, but KernelDensity was fitted with 3 features"):
            kde.score_samples(_lazy(Q[:, :2]))
        unknown = _lazy(Q)[_lazy(Q)[:, 0] > 0]
        with pytest.raises(ValueError, match=r"row chunk sizes are unknown .*compute_chunk_sizes"):
            kde.score_samples(unknown)
        with pytest.raises(ValueError, match="must be 2-D"):
            kde.score_samples(da.from_array(Q[:, 0], chunks=100))
    assert counter.started == 0
    with pytest.raises(NotFittedError):
        KernelDensity().score_samples(_lazy(Q))


def test_fitting_on_a_dask_array_says_what_is_supported():
    X, _ = _data(seed=8)
    # GaussianMixture, KernelDensity and KNNDensity fit on dask (test_dask_mixture.py, test_kde_fit.py,
    # test_knn_fit.py); the parametric fits do not
    for est in (MultivariateNormal(),):
        with pytest.raises(TypeError, match="Dask arrays are not supported yet.*queries in score_samples"):
            est.fit(_lazy(X, rows=(300, 300)))
