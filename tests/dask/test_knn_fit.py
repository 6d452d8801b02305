"""KNNDensity fitted on a dask array: the training set stays sharded (per-shard searches, top-k
lists merged in a tree), and every query method equals the in-memory fit on X.compute()."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from dask.callbacks import Callback  # noqa: E402

from fastdensity.knn import KNNDensity  # noqa: E402

# Each shard's neighbours carry the CPU engine's exact float64 distances (the same operations on
# the same numbers as in memory) and the density is the same formula of them, so the results are
# equal up to nothing; 1e-10 is the bound, far above a few float64 roundings (2.2e-16).
RTOL = 1e-10


pytestmark = pytest.mark.usefixtures("threaded_scheduler")  # tests/dask/conftest.py


def _data(n, m, d, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), (rng.standard_normal((m, d)) * 1.2).astype(dtype)


class _Largest(Callback):
    """The most rows any task's result holds (an array, or a shard's prepared search state)."""

    def __init__(self):
        super().__init__()
        self.rows = 0
        self.tasks = 0

    def _pretask(self, key, dsk, state):
        self.tasks += 1

    def _posttask(self, key, result, dsk, state, worker_id):
        values = result if isinstance(result, tuple) else (result,)
        for v in values:
            array = getattr(v, "train", v)
            if isinstance(array, np.ndarray) and array.ndim == 2:
                self.rows = max(self.rows, array.shape[0])


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
def test_sharded_fit_equals_in_memory(algorithm):
    X, Q = _data(3000, 900, 3, seed=0)
    chunks = ((700, 0, 900, 1000, 400), (2, 1))  # an empty shard, two column chunks
    lazy_X = da.from_array(X, chunks=chunks)
    lazy_Q = da.from_array(Q, chunks=((300, 0, 600), 3))
    want = KNNDensity(n_neighbors=8, algorithm=algorithm).fit(X)
    got = KNNDensity(n_neighbors=8, algorithm=algorithm).fit(lazy_X)
    assert got.n_samples_fit_ == 3000 and got.n_features_in_ == 3
    assert got.effective_algorithm_ == want.effective_algorithm_ == algorithm
    assert got.training_data_ is not None and isinstance(got.training_data_, da.Array)
    # NumPy queries: a NumPy result
    out = got.score_samples(Q)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, want.score_samples(Q), rtol=RTOL)
    # dask queries: lazy, with the queries' row chunks
    lazy = got.score_samples(lazy_Q)
    assert isinstance(lazy, da.Array) and lazy.chunks == ((300, 0, 600),)
    np.testing.assert_allclose(lazy.compute(), want.score_samples(Q), rtol=RTOL)
    # leave-one-out: the training set's own chunks, each point without itself
    loo = got.score_samples()
    assert isinstance(loo, da.Array) and loo.chunks == ((700, 0, 900, 1000, 400),)
    np.testing.assert_allclose(loo.compute(), want.score_samples(), rtol=RTOL)
    np.testing.assert_allclose(got.score(Q), want.score(Q), rtol=RTOL)
    np.testing.assert_allclose(got.score(lazy_Q), want.score(Q), rtol=RTOL)
    np.testing.assert_allclose(got.score(), want.score(), rtol=RTOL)
    # scoring the training points as queries keeps each point's own distance 0 (no exclusion)
    np.testing.assert_allclose(got.score_samples(lazy_X).compute(), want.score_samples(X), rtol=RTOL)


def test_kneighbors_equal_in_memory_with_global_indices():
    X, Q = _data(2500, 700, 4, seed=1)
    lazy_X = da.from_array(X, chunks=600)
    want = KNNDensity(n_neighbors=6).fit(X)
    got = KNNDensity(n_neighbors=6).fit(lazy_X)
    for queries, lazy in ((Q, False), (da.from_array(Q, chunks=250), True), (None, True)):
        dist, ind = got.kneighbors(queries, n_neighbors=11)
        assert isinstance(dist, da.Array) == lazy and isinstance(ind, da.Array) == lazy
        w_dist, w_ind = want.kneighbors(queries if queries is None or isinstance(queries, np.ndarray) else Q,
                                        n_neighbors=11)
        np.testing.assert_array_equal(np.asarray(ind), w_ind)  # continuous data: no ties
        np.testing.assert_allclose(np.asarray(dist), w_dist, rtol=RTOL)
    ind = got.kneighbors(Q, return_distance=False)
    np.testing.assert_array_equal(ind, want.kneighbors(Q, return_distance=False))


def test_the_training_set_is_never_gathered():
    X, Q = _data(4000, 500, 2, seed=2)
    lazy_X = da.from_array(X, chunks=1000)
    est = KNNDensity(n_neighbors=5).fit(lazy_X)
    with _Largest() as seen:
        est.score_samples(da.from_array(Q, chunks=250)).compute()
        est.score_samples()[:10].compute()
        est.score(Q)
    # No task holds more rows than one training shard (1000) or one query chunk.
    assert 0 < seen.rows <= 1000


def test_shards_smaller_than_k_and_single_rows():
    X, Q = _data(60, 40, 2, seed=3)
    chunks = ((1, 3, 1, 20, 35), 2)  # shards of 1 row: no own neighbours in leave-one-out
    want = KNNDensity(n_neighbors=9).fit(X)
    got = KNNDensity(n_neighbors=9).fit(da.from_array(X, chunks=chunks))
    np.testing.assert_allclose(got.score_samples(Q), want.score_samples(Q), rtol=RTOL)
    np.testing.assert_allclose(got.score_samples().compute(), want.score_samples(), rtol=RTOL)
    dist, ind = got.kneighbors(n_neighbors=59)  # k = n − 1: every other point
    np.testing.assert_array_equal(ind.compute(), want.kneighbors(n_neighbors=59)[1])


def test_float32_stays_float32():
    X, Q = _data(1500, 300, 3, seed=4, dtype=np.float32)
    want = KNNDensity(n_neighbors=7).fit(X)
    got = KNNDensity(n_neighbors=7).fit(da.from_array(X, chunks=400))
    out = got.score_samples(da.from_array(Q, chunks=100))
    assert out.dtype == np.float32
    # float32 distances rounded from the same float64 ones, the same float64 formula, then
    # rounded to float32: equal to float32 rounding (eps 1.2e-7), 4 ulps allowed
    np.testing.assert_allclose(out.compute(), want.score_samples(Q), rtol=4 * np.finfo(np.float32).eps)


def test_in_memory_fit_takes_dask_queries_in_kneighbors():
    X, Q = _data(1200, 400, 3, seed=5)
    est = KNNDensity(n_neighbors=4).fit(X)
    dist, ind = est.kneighbors(da.from_array(Q, chunks=150))
    assert isinstance(dist, da.Array) and dist.chunks == ((150, 150, 100), (4,))
    w_dist, w_ind = est.kneighbors(Q)
    np.testing.assert_array_equal(ind.compute(), w_ind)
    np.testing.assert_allclose(dist.compute(), w_dist, rtol=RTOL)


def test_duplicates_warn_with_the_in_memory_rows():
    X, _ = _data(200, 1, 2, seed=6)
    X[50:54] = X[7]  # five copies of one point
    got = KNNDensity(n_neighbors=3).fit(da.from_array(X, chunks=60))
    with pytest.warns(RuntimeWarning, match=r"rows 7, 50, 51, 52, 53\)"):
        out = got.score_samples()
        values = out.compute()  # raised by the chunks' tasks, rows counted from the set's start
    assert np.isposinf(values[[7, 50, 51, 52, 53]]).all()
    with pytest.warns(RuntimeWarning, match=r"1 of 2 rows .*rows 1\)"):
        assert np.isposinf(got.score_samples(X[[0, 7]])[1])


def _no_task_runs():
    return _Largest()


def test_invalid_input_is_refused_before_any_task():
    X, Q = _data(500, 50, 3, seed=7)
    lazy_X = da.from_array(X, chunks=100)
    with _no_task_runs() as seen:
        with pytest.raises(ValueError, match="chunk sizes are unknown"):
            KNNDensity().fit(lazy_X[lazy_X[:, 0] > 0])
        with pytest.raises(ValueError, match="n_neighbors = 600 is larger than the number of training points"):
            KNNDensity(n_neighbors=600).fit(lazy_X)
        with pytest.raises(TypeError, match="backend='cuda' with a dask array is not supported"):
            KNNDensity(backend="cuda").fit(lazy_X)
        with pytest.raises(ValueError, match="2-D"):
            KNNDensity().fit(da.ones(10, chunks=5))
    assert seen.tasks == 0
    est = KNNDensity(n_neighbors=5).fit(lazy_X)
    lazy_Q = da.from_array(Q, chunks=10)
    with _no_task_runs() as seen:
        with pytest.raises(ValueError, match="X has 2 features, but KNNDensity is expecting 3"):
            est.score_samples(lazy_Q[:, :2])
        with pytest.raises(ValueError, match="X has 2 features, but KNNDensity is expecting 3"):
            est.kneighbors(Q[:, :2])
        with pytest.raises(ValueError, match="chunk sizes are unknown"):
            est.score_samples(lazy_Q[lazy_Q[:, 0] > 0])
        with pytest.raises(ValueError, match="leave-one-out .* n_neighbors <= n_samples - 1 = 499"):
            est.kneighbors(n_neighbors=500)
    assert seen.tasks == 0


def test_non_finite_values_are_refused():
    X, Q = _data(400, 50, 2, seed=8)
    bad = X.copy()
    bad[333, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN or infinity"):
        KNNDensity().fit(da.from_array(bad, chunks=100))  # the fit's pass over the data
    est = KNNDensity().fit(da.from_array(X, chunks=100))
    Q[17, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains NaN or infinity"):
        est.score_samples(da.from_array(Q, chunks=20)).compute()  # the chunk's task
    with pytest.raises(ValueError, match="Input X contains infinity"):
        est.score_samples(Q)  # the in-memory check (scikit-learn's words)


def test_save_gathers_the_shards_into_an_in_memory_model(tmp_path):
    # As for KernelDensity (io.py): the file holds the rows, and loads as an in-memory model.
    import fastdensity as fd

    X, Q = _data(400, 30, 2, seed=9)
    est = KNNDensity(n_neighbors=5).fit(da.from_array(X, chunks=150))
    fd.save(est, tmp_path / "model.npz")
    loaded = fd.load(tmp_path / "model.npz")
    assert isinstance(loaded.training_data_, np.ndarray)
    np.testing.assert_array_equal(loaded.score_samples(Q), KNNDensity(n_neighbors=5).fit(X).score_samples(Q))


def test_torch_cpu_queries_come_back_as_torch():
    torch = pytest.importorskip("torch")
    X, Q = _data(500, 60, 3, seed=11)
    want = KNNDensity(n_neighbors=5).fit(X)
    got = KNNDensity(n_neighbors=5).fit(da.from_array(X, chunks=120))
    out = got.score_samples(torch.from_numpy(Q))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), want.score_samples(Q), rtol=RTOL)


# ----------------------------------------------------------------- a real cluster (2 processes)
@pytest.mark.slow
def test_sharded_fit_on_worker_processes(client):
    X, Q = _data(6000, 2000, 3, seed=10)
    lazy_X = client.persist(da.from_array(X, chunks=1500))
    want = KNNDensity(n_neighbors=10).fit(X)
    got = KNNDensity(n_neighbors=10).fit(lazy_X)
    np.testing.assert_allclose(got.score_samples(Q), want.score_samples(Q), rtol=RTOL)
    lazy, loo = client.compute([got.score_samples(da.from_array(Q, chunks=500)), got.score_samples()], sync=True)
    np.testing.assert_allclose(lazy, want.score_samples(Q), rtol=RTOL)
    np.testing.assert_allclose(loo, want.score_samples(), rtol=RTOL)
    np.testing.assert_array_equal(got.kneighbors(Q)[1], want.kneighbors(Q)[1])

