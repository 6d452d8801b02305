"""KernelDensity.fit on a dask array (kde/_engine_dask.py): the training set stays sharded, and
bandwidths, densities and draws are the in-memory fit's on the same rows."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import fastdensity as fd  # noqa: E402
from fastdensity import KernelDensity  # noqa: E402

# The same per-pair terms as in memory, summed per shard and merged by log-sum-exp instead of in
# one running sum; the rules' moments merged pairwise (Chan et al.) instead of two passes about the
# global mean. Each is rounding of a few ulps times log(n) levels; the bound is 1e-10.
RTOL = 1e-10
# float32 data run the float32 kernel sums here as in memory: a few float32 ulps of each term.
RTOL32 = 64 * np.finfo(np.float32).eps
CHUNKS = ((700, 0, 1100, 400, 800), (2,))  # uneven, with an empty chunk


pytestmark = pytest.mark.usefixtures("threaded_scheduler")  # tests/dask/conftest.py


def _data(n=3000, m=500, d=2, seed=0, dtype=np.float64, offset=100.0):
    rng = np.random.default_rng(seed)
    mix = np.diag(np.linspace(1.0, 0.7, d)) + 0.4 * np.triu(np.ones((d, d)), 1)  # correlated features
    X = (rng.standard_normal((n, d)) @ mix + offset).astype(dtype)
    Q = (rng.standard_normal((m, d)) * 1.5 + offset).astype(dtype)
    return X, Q, rng.uniform(0.2, 3.0, n)


def _sharded(X, chunks=CHUNKS):
    return da.from_array(X, chunks=(chunks[0], X.shape[1]))


class _Counting:
    """Counts the tasks the graphs run, by key name prefix (a dask callback)."""

    def __init__(self):
        self.names = []

    def __enter__(self):
        from dask.callbacks import Callback

        def start(key, dsk, state):
            self.names.append(str(key[0] if isinstance(key, tuple) else key))

        self._cb = Callback(pretask=start)
        self._cb.__enter__()
        return self

    def __exit__(self, *exc):
        self._cb.__exit__(*exc)

    def count(self, prefix=""):
        return sum(n.startswith(prefix) for n in self.names)


BANDWIDTHS = ["scott", "silverman", 0.4, np.array([0.3, 0.5]), np.array([[0.3, 0.1], [0.1, 0.4]])]
BW_IDS = ["scott", "silverman", "float", "per-feature", "matrix"]


@pytest.mark.parametrize("bandwidth", BANDWIDTHS, ids=BW_IDS)
@pytest.mark.parametrize("weights", ["none", "numpy", "dask"])
def test_bandwidth_and_densities_equal_the_in_memory_fit(bandwidth, weights):
    X, Q, w = _data()
    given = {"none": None, "numpy": w, "dask": da.from_array(w, chunks=500)}[weights]
    want = KernelDensity(bandwidth=bandwidth).fit(X, sample_weight=None if given is None else w)
    got = KernelDensity(bandwidth=bandwidth).fit(_sharded(X), sample_weight=given)
    assert isinstance(got.training_data_, da.Array)
    np.testing.assert_allclose(got.bandwidth_matrix_, want.bandwidth_matrix_, rtol=RTOL)
    np.testing.assert_allclose(got.bandwidth_, want.bandwidth_, rtol=RTOL)
    assert got.effective_algorithm_ == "exact"
    np.testing.assert_allclose(got.score_samples(Q), want.score_samples(Q), rtol=RTOL)
    lazy = got.score_samples(da.from_array(Q, chunks=((200, 250, 50), 2)))
    assert isinstance(lazy, da.Array) and lazy.chunks == ((200, 250, 50),)
    np.testing.assert_allclose(lazy.compute(), want.score_samples(Q), rtol=RTOL)
    np.testing.assert_allclose(got.score(Q), want.score(Q), rtol=RTOL)


@pytest.mark.parametrize("kernel", ["epanechnikov", "tophat", "exponential", "cosine"])
def test_every_kernel_and_the_compact_supports_minus_inf(kernel):
    X, Q, w = _data(d=3, seed=1, offset=-40.0)
    Q[:5] += 50.0  # beyond every compact support: -inf, as in memory
    want = KernelDensity(bandwidth="scott", kernel=kernel).fit(X, sample_weight=w)
    got = KernelDensity(bandwidth="scott", kernel=kernel).fit(_sharded(X), sample_weight=w).score_samples(Q)
    np.testing.assert_allclose(got, want.score_samples(Q), rtol=RTOL)


@pytest.mark.parametrize(
    "params",
    [
        {"metric": "manhattan", "bandwidth": "scott"},
        {"metric": "chebyshev", "bandwidth": 0.4, "kernel": "epanechnikov"},
        {"metric": "minkowski", "metric_params": {"p": 3.0}, "bandwidth": "silverman"},
        {"metric": "mahalanobis", "metric_params": {"V": np.array([[1.0, 0.3], [0.3, 0.5]])}, "bandwidth": 0.6},
    ],
    ids=["manhattan-scott", "chebyshev-compact", "minkowski-silverman", "mahalanobis"],
)
def test_other_metrics_equal_the_in_memory_fit(params):
    X, Q, w = _data(seed=16)
    want = KernelDensity(**params).fit(X, sample_weight=w)
    got = KernelDensity(**params).fit(_sharded(X), sample_weight=da.from_array(w, chunks=800))
    assert isinstance(got.bandwidth_, float)
    np.testing.assert_allclose(got.bandwidth_, want.bandwidth_, rtol=RTOL)
    np.testing.assert_allclose(got.score_samples(Q), want.score_samples(Q), rtol=RTOL)
    lazy = got.score_samples(da.from_array(Q, chunks=200)).compute()
    np.testing.assert_allclose(lazy, want.score_samples(Q), rtol=RTOL)
    draws = got.sample(100, random_state=0)
    np.testing.assert_array_equal(draws, got.sample(100, random_state=0))


def test_zero_weights_and_a_shard_of_zero_weight():
    X, Q, w = _data(seed=2)
    w[700:1800] = 0.0  # exactly the second non-empty shard
    X[700:1800] += 1000.0  # far away: a draw from those rows would show
    w[::7] = 0.0
    want = KernelDensity(bandwidth="silverman").fit(X, sample_weight=w)
    got = KernelDensity(bandwidth="silverman").fit(_sharded(X), sample_weight=da.from_array(w, chunks=1000))
    np.testing.assert_allclose(got.bandwidth_matrix_, want.bandwidth_matrix_, rtol=RTOL)
    np.testing.assert_allclose(got.score_samples(Q), want.score_samples(Q), rtol=RTOL)
    draws = got.sample(2000, random_state=0)
    assert draws.shape == (2000, 2) and np.all(draws < 500.0)


def test_one_dimensional_rules_give_a_float_bandwidth():
    X, Q, w = _data(d=1, seed=3)
    want = KernelDensity(bandwidth="scott").fit(X, sample_weight=w)
    got = KernelDensity(bandwidth="scott").fit(_sharded(X), sample_weight=w)
    assert isinstance(got.bandwidth_, float)
    np.testing.assert_allclose(got.bandwidth_, want.bandwidth_, rtol=RTOL)
    np.testing.assert_allclose(got.score_samples(Q), want.score_samples(Q), rtol=RTOL)


def test_float32_stays_float32_and_float64_queries_run_in_float64():
    X, Q, _ = _data(seed=4, dtype=np.float32)
    want = KernelDensity(bandwidth=0.5).fit(X)
    got = KernelDensity(bandwidth=0.5).fit(_sharded(X))
    out = got.score_samples(Q)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, want.score_samples(Q), rtol=RTOL32)
    lazy = got.score_samples(da.from_array(Q, chunks=(100, 2)))
    assert lazy.dtype == np.float32 and lazy.compute().dtype == np.float32
    Q64 = Q.astype(np.float64)
    np.testing.assert_allclose(got.score_samples(Q64), want.score_samples(Q64), rtol=RTOL)
    assert got.sample(3, random_state=0).dtype == np.float32


def test_feature_chunks_are_joined_and_integers_become_float64():
    X, Q, _ = _data(seed=17)
    want = KernelDensity(bandwidth="scott").fit(X)
    got = KernelDensity(bandwidth="scott").fit(da.from_array(X, chunks=(600, 1)))
    np.testing.assert_allclose(got.score_samples(Q), want.score_samples(Q), rtol=RTOL)
    Xi = np.round(X * 10).astype(np.int64)
    got = KernelDensity(bandwidth="scott").fit(da.from_array(Xi, chunks=(600, 2)))
    assert got.training_data_.dtype == np.float64
    np.testing.assert_allclose(got.score_samples(Q * 10), KernelDensity(bandwidth="scott").fit(Xi).score_samples(Q * 10),
                               rtol=RTOL)


def _depth(graph, key, memo):
    from dask.core import get_dependencies

    if key not in memo:
        memo[key] = 1 + max((_depth(graph, k, memo) for k in get_dependencies(graph, key)), default=0)
    return memo[key]


def test_shards_merge_in_a_tree_and_the_shared_state_is_one_key():
    X, Q, _ = _data(n=4000, seed=5)
    shards = 16
    got = KernelDensity(bandwidth=0.5).fit(_sharded(X, chunks=((250,) * shards,)))
    lazy = got.score_samples(da.from_array(Q, chunks=(250, 2)))
    graph = dict(lazy.__dask_graph__())
    merges = [k for k in graph if str(k).startswith("logaddexp")]
    assert len(merges) == 2 * (shards - 1)  # per query chunk, shards − 1 pairwise merges
    shared = [k for k in graph if str(k).startswith("fastdensity-KernelDensity-shared")]
    assert len(shared) == 1
    memo = {}
    depth = max(_depth(graph, k, memo) for k in graph)
    # queries → whiten → shard sum → log₂(16) = 4 merges → finish → from-value → concatenate;
    # a chain of merges would be 15 deep
    assert depth <= 6 + math.ceil(math.log2(shards)), depth


def test_the_whitened_shards_are_built_once_per_fit():
    X, Q, _ = _data(seed=6)
    got = KernelDensity(bandwidth="scott").fit(_sharded(X))
    with _Counting() as first:
        got.score_samples(Q)
    with _Counting() as second:
        got.score_samples(Q)
        got.score_samples(da.from_array(Q, chunks=200)).compute()
    assert first.count("_shard_state") == 4  # the non-empty shards
    assert second.count("_shard_state") == 0 and second.count("_shard_logsum") == 4 + 3 * 4
    got.fit(X)  # a refit in memory drops the sharded state
    np.testing.assert_allclose(got.score_samples(Q), KernelDensity(bandwidth="scott").fit(X).score_samples(Q), rtol=0)


def test_sampling_is_reproducible_and_follows_the_density():
    from scipy import stats
    from scipy.special import ndtr

    X, _, _ = _data(n=1000, d=1, seed=7)
    X = np.sort(X, axis=0)  # each shard a range of x: a shard left out would shift the mixture
    w = np.exp(0.5 * (X[:, 0] - 100.0))  # weights that change the density (unweighted draws fail)
    sharded = KernelDensity(bandwidth="scott").fit(_sharded(X, chunks=((300, 0, 450, 250),)),
                                                   sample_weight=da.from_array(w, chunks=300))
    a = sharded.sample(10000, random_state=3)
    np.testing.assert_array_equal(a, sharded.sample(10000, random_state=3))
    assert not np.array_equal(a, sharded.sample(10000, random_state=4))
    # The in-memory density's CDF: F(x) = Σ w_j Φ((x − x_j)/h) / Σw. A KS test at a fixed seed;
    # p > 1e-3 fails a correct sampler once in a thousand seeds, and a wrong mixture at every seed
    # of this size (unweighted draws: p ≈ 1e-289; without the first shard, far smaller still).
    h = sharded.bandwidth_
    x = np.sort(a[:, 0])
    cdf = lambda t: (ndtr((np.atleast_1d(t)[:, None] - X[None, :, 0]) / h) @ w) / w.sum()
    assert stats.kstest(x, cdf).pvalue > 1e-3


def test_sample_moments_with_a_matrix_bandwidth():
    X, _, _ = _data(seed=8)
    H = np.array([[0.3, 0.1], [0.1, 0.4]])
    got = KernelDensity(bandwidth=H).fit(_sharded(X))
    n = 40000
    draws = got.sample(n, random_state=0)
    # gaussian KDE draws: mean = the data mean, covariance = the (biased) data covariance + H
    cov = np.cov(X.T, bias=True) + H
    se = np.sqrt(np.diag(cov) / n)  # standard error of each coordinate's mean
    assert np.all(np.abs(draws.mean(0) - X.mean(0)) < 5 * se)
    # a variance estimate's standard error is about var·sqrt(2/n) for near-normal draws
    assert np.all(np.abs(np.var(draws, axis=0) - np.diag(cov)) < 5 * np.diag(cov) * np.sqrt(2 / n))


@pytest.mark.parametrize(
    "params, what",
    [
        ({"bandwidth": "isj"}, "bandwidth='isj'"),
        ({"bandwidth": "cv"}, "bandwidth='cv'"),
        ({"bandwidth": "plugin"}, "bandwidth='plugin'"),
        ({"bandwidth": "lscv"}, "bandwidth='lscv'"),
        ({"bandwidth": "mlcv_diag"}, "bandwidth='mlcv_diag'"),
        ({"bandwidth": "sj"}, "bandwidth='sj'"),
        ({"adaptive": True}, "adaptive=True"),
        ({"bounds": [(0, None), None]}, "bounds"),
        ({"algorithm": "tree"}, "algorithm='tree'"),
        ({"algorithm": "fft"}, "algorithm='fft'"),
    ],
)
def test_what_needs_every_row_is_refused_before_any_work(params, what):
    X, _, _ = _data(seed=9)
    with _Counting() as counter:
        with pytest.raises(ValueError, match=re.escape(f"dask array: {what}") + r".* is not supported; supported: a positive float"):
            KernelDensity(**params).fit(_sharded(X))
    assert counter.count() == 0


def test_bad_arrays_are_refused_before_any_task_runs():
    X, Q, w = _data(seed=10)
    lazy = _sharded(X)
    with _Counting() as counter:
        with pytest.raises(ValueError, match="chunk sizes are unknown"):
            KernelDensity().fit(lazy[lazy[:, 0] > 100])
        with pytest.raises(ValueError, match="2-D dask array"):
            KernelDensity().fit(da.from_array(X[:, 0], chunks=500))
        with pytest.raises(ValueError, match=r"sample_weight.shape == \(10,\), expected \(3000,\)"):
            KernelDensity().fit(lazy, sample_weight=da.ones(10, chunks=5))
        with pytest.raises(ValueError, match="Negative values"):
            KernelDensity().fit(lazy, sample_weight=-w)
        with pytest.raises(ValueError, match="bandwidth must be a positive number, an array or one of"):
            KernelDensity(bandwidth="scot").fit(lazy)
        with pytest.raises(ValueError, match="bandwidth must be positive and finite"):
            KernelDensity(bandwidth=-1.0).fit(lazy)
        kde = KernelDensity(bandwidth=0.5).fit(lazy)
        started = counter.count()
        with pytest.raises(ValueError, match="X has 3 features, but KernelDensity was fitted with 2 features"):
            kde.score_samples(da.from_array(np.ones((5, 3)), chunks=2))
        with pytest.raises(ValueError, match="X has 3 features"):
            kde.score_samples(np.ones((5, 3)))
        q = da.from_array(Q, chunks=100)
        with pytest.raises(ValueError, match="row chunk sizes are unknown"):
            kde.score_samples(q[q[:, 0] > 100])
    assert counter.count() == started  # only the fit's own passes ran


def test_equal_weights_are_no_weights_and_evaluate_grid_is_refused():
    X, Q, _ = _data(seed=15)
    plain = KernelDensity(bandwidth=0.5).fit(_sharded(X))
    equal = KernelDensity(bandwidth=0.5).fit(_sharded(X), sample_weight=da.full(len(X), 2.5, chunks=1000))
    np.testing.assert_array_equal(equal.score_samples(Q), plain.score_samples(Q))
    np.testing.assert_array_equal(equal.sample(50, random_state=0), plain.sample(50, random_state=0))
    with _Counting() as counter:
        with pytest.raises(ValueError, match="evaluate_grid needs the training rows in one place"):
            plain.evaluate_grid(grid_points=16)
    assert counter.count() == 0


def test_bad_values_are_found_by_the_first_pass():
    X, _, w = _data(seed=11)
    X[1234, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        KernelDensity().fit(_sharded(X))
    X[1234, 1] = 1.0
    w[5] = -1.0
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        KernelDensity().fit(_sharded(X), sample_weight=da.from_array(w, chunks=1000))
    with pytest.raises(ValueError, match="constant"):
        KernelDensity(bandwidth="scott").fit(_sharded(np.c_[X[:, 0], np.ones(len(X))]))
    with pytest.raises(ValueError, match="overflow float64"):
        KernelDensity(bandwidth=1e-10).fit(_sharded(X * 1e300))


def test_save_gathers_the_training_set_into_the_file(tmp_path):
    X, Q, w = _data(seed=12)
    sharded = KernelDensity(bandwidth="scott").fit(_sharded(X), sample_weight=da.from_array(w, chunks=1000))
    fd.save(sharded, tmp_path / "kde.npz")
    loaded = fd.load(tmp_path / "kde.npz")
    assert isinstance(loaded.training_data_, np.ndarray) and isinstance(loaded.sample_weight_, np.ndarray)
    np.testing.assert_array_equal(loaded.training_data_, X)
    np.testing.assert_allclose(loaded.score_samples(Q), sharded.score_samples(Q), rtol=RTOL)


# ------------------------------------------------------------------------- LocalCluster


def test_fit_and_score_on_worker_processes_equal_in_memory(client):
    X, Q, w = _data(n=4000, seed=13)
    want = KernelDensity(bandwidth="scott").fit(X, sample_weight=w)
    got = KernelDensity(bandwidth="scott").fit(_sharded(X, chunks=((1000,) * 4,)), sample_weight=w)
    np.testing.assert_allclose(got.bandwidth_matrix_, want.bandwidth_matrix_, rtol=RTOL)
    np.testing.assert_allclose(got.score_samples(Q), want.score_samples(Q), rtol=RTOL)
    _, states = got._cache()[("dask", np.dtype(np.float64))]
    held = {key for keys in client.has_what().values() for key in keys}
    assert len(states) == 4 and {s.key for s in states} <= held  # persisted on the workers
    lazy = got.score_samples(da.from_array(Q, chunks=(125, 2)))
    np.testing.assert_allclose(client.compute(lazy, sync=True), want.score_samples(Q), rtol=RTOL)
    np.testing.assert_allclose(got.score(da.from_array(Q, chunks=(125, 2))), want.score(Q), rtol=RTOL)


@pytest.mark.slow
def test_sampling_on_worker_processes_is_reproducible(client):
    X, _, w = _data(n=4000, seed=14)
    got = KernelDensity(bandwidth=0.3).fit(_sharded(X, chunks=((1000,) * 4,)), sample_weight=da.from_array(w, chunks=1000))
    a = got.sample(5000, random_state=1)
    np.testing.assert_array_equal(a, got.sample(5000, random_state=1))
    with dask.config.set(scheduler="threads"):  # the same draws whatever the scheduler
        np.testing.assert_array_equal(a, got.sample(5000, random_state=1))


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_auto_with_a_tolerance_runs_and_reports_the_exact_sums(kernel):
    # In memory, "auto" with rtol > 0 may choose the grid or the tree (neither runs on shards):
    # the sharded fit must say "exact" and give the exact sums, not report a choice it ignores.
    X, Q, _ = _data(n=20000, m=200, seed=11)
    est = KernelDensity(kernel=kernel, bandwidth="scott", rtol=1e-3).fit(_sharded(X, ((5000,) * 4, (2,))))
    assert est.effective_algorithm_ == "exact"
    exact = KernelDensity(kernel=kernel, bandwidth="scott").fit(X).score_samples(Q)
    np.testing.assert_allclose(est.score_samples(Q), exact, rtol=RTOL, atol=0)
