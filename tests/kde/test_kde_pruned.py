"""The compact kernels' tree (``algorithm="tree"``, ``_pruned_cpu``) against the exact engine, and
``algorithm="auto"``'s choice (``_algorithm``).

Both engines sum the same non-zero terms w_j k(r_j s_j) of the same stored (whitened) values;
they differ in the order of the additions and possibly in how the compiler contracts a term's
operations. Per query, with u the working dtype's unit roundoff and W the weight of the points
within (or on the edge of) the support:

* a term: r² has relative error at most (d + 3) u in either engine, and every profile has
  |dk/d(r²)| ≤ 3 on r² < 1 (triweight; linear's 1/(2r) times r²'s relative error is ≤ 1/2), so a
  term differs by at most w (3 (d + 3) + 4) u (its profile's own operations: 4 u);
* a sum of K non-negative terms in the working dtype is within (K − 1) u of its value relative to
  the sum, K = TILE (the exact engine's tiles) at most; the float64 additions across tiles and
  leaves add less than that;
* tophat jumps at r² = 1: a point whose r² lies within 4 (d + 4) u of 1 may count in one engine
  and not the other; their weight W_edge is added whole.

So |S_tree − S_exact| ≤ u (2 TILE + 3 d + 16) W + W_edge, and the log densities differ by at most
that over S (the oracle's float64 sum of the same terms).

Numba compiles per (kernel, dtype, d): the default run keeps to d = 2 float64 for every kernel,
and one kernel each for float32, d = 1, 3 and the buffered path (d = 17).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity import KernelDensity
from fastdensity.kde import _algorithm
from fastdensity.kde._bandwidth import whiten
from fastdensity.kde._engine_cpu import CPU_ENGINE
from fastdensity.kde._kde_cpu import TILE
from fastdensity.kde._kernels import COMPACT_KERNELS, kernel_profile_log

COMPACT = sorted(COMPACT_KERNELS)


def _data(n, m, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    # queries partly outside the data, so that some see no support at all (-inf)
    Q = rng.standard_normal((m, d)) * 1.6
    return X, Q


def _allowance(est, Q, dtype):
    """Per-query bound on |log p_tree − log p_exact| (module docstring), and the mask of queries
    with no point in the support (both must be -inf there)."""
    chol, train_t, log_w, inv_scales, _ = CPU_ENGINE.state(est, dtype)
    x = train_t.astype(np.float64)
    q = whiten(chol, Q - est._centre()).astype(dtype).astype(np.float64)
    w = np.exp(log_w - log_w.max())
    s2 = np.ones(x.shape[1]) if inv_scales is None else (inv_scales.astype(np.float64) ** 2).astype(dtype)
    u = np.finfo(dtype).eps / 2
    d = x.shape[0]
    edge = 4 * (d + 4) * u
    bound = np.empty(len(q))
    empty = np.empty(len(q), dtype=bool)
    for i0 in range(0, len(q), 100):
        diff = q[i0:i0 + 100, :, None] - x[None, :, :]
        t = np.sum(diff * diff, axis=1) * s2  # (block, n)
        k = np.exp(kernel_profile_log(est.kernel, np.sqrt(t)))
        S = k @ w
        W = (t < 1 + edge) @ w
        W_edge = (np.abs(t - 1) <= edge) @ w
        bound[i0:i0 + 100] = (u * (2 * TILE + 3 * d + 16) * W + W_edge) / np.where(S > 0, S, 1.0)
        empty[i0:i0 + 100] = W == 0
    return bound, empty


def _check_tree_equals_exact(est, Q, dtype):
    assert est.effective_algorithm_ == "tree"
    tree = est.score_samples(Q)
    est.effective_algorithm_ = "exact"  # the exact engine on the same fitted state
    exact = est.score_samples(Q)
    est.effective_algorithm_ = "tree"
    bound, empty = _allowance(est, Q, dtype)
    assert tree.dtype == exact.dtype
    np.testing.assert_array_equal(np.isneginf(tree), empty)
    np.testing.assert_array_equal(np.isneginf(exact), empty)
    assert 0 < empty.sum() < len(Q)  # the test sees both kinds of query
    live = ~empty
    diff = np.abs(tree[live].astype(np.float64) - exact[live].astype(np.float64))
    # float32 results are rounded to float32 at the end: half an ulp of each log density more
    out_round = np.abs(exact[live].astype(np.float64)) * (np.finfo(dtype).eps if dtype == np.float32 else 0)
    assert np.all(diff <= bound[live] + out_round), np.max(diff - bound[live] - out_round)


@pytest.mark.parametrize("kernel", COMPACT)
def test_tree_equals_exact_every_compact_kernel(kernel):
    X, Q = _data(3000, 400, 2, seed=1)
    est = KernelDensity(kernel=kernel, bandwidth=0.3, algorithm="tree").fit(X)
    _check_tree_equals_exact(est, Q, np.float64)


@pytest.mark.parametrize(("kernel", "d", "dtype"), [
    ("epanechnikov", 1, np.float64), ("biweight", 3, np.float64), ("tophat", 2, np.float32),
    ("linear", 2, np.float32), ("triweight", 17, np.float64),
])
def test_tree_equals_exact_dims_and_dtypes(kernel, d, dtype):
    X, Q = _data(2500, 300, d, seed=2)
    h = 0.3 if d <= 3 else 2.5
    est = KernelDensity(kernel=kernel, bandwidth=h, algorithm="tree").fit(X.astype(dtype))
    _check_tree_equals_exact(est, Q.astype(dtype), dtype)


def test_tree_weighted_adaptive_and_matrix_bandwidth():
    rng = np.random.default_rng(3)
    X, Q = _data(3000, 400, 2, seed=3)
    w = rng.uniform(0.0, 3.0, len(X))
    w[::7] = 0.0  # zero weights are dropped from the state
    H = np.array([[0.09, 0.03], [0.03, 0.05]])
    est = KernelDensity(kernel="epanechnikov", bandwidth=H, adaptive=True, algorithm="tree").fit(X, sample_weight=w)
    assert est.adaptive_factors_.min() < 0.7 < 1.4 < est.adaptive_factors_.max()  # radii vary
    _check_tree_equals_exact(est, Q, np.float64)


def test_tree_many_queries_run_in_parallel_in_tree_order():
    """Enough queries for the threaded driver and the leaf-sorted order; the order and the
    threads change nothing (each query is one thread's fixed-order sum)."""
    X, Q = _data(3000, 6000, 2, seed=4)
    est = KernelDensity(kernel="cosine", bandwidth=0.25, algorithm="tree").fit(X)
    _check_tree_equals_exact(est, Q, np.float64)
    whole = est.score_samples(Q)
    np.testing.assert_array_equal(np.concatenate([est.score_samples(Q[:100]), est.score_samples(Q[100:])]), whole)


def test_tree_prunes():
    """The tree scans a small part of the data for a small support (else it would be exact but
    not pruned)."""
    from fastdensity.kde._pruned_cpu import kde_logsum_pruned

    X, Q = _data(4000, 200, 2, seed=5)
    est = KernelDensity(kernel="epanechnikov", bandwidth=0.1, algorithm="tree").fit(X)
    index = CPU_ENGINE.tree_index(est, np.float64)
    q = whiten(est._bandwidth_cholesky(), Q - est._centre())
    _, scanned = kde_logsum_pruned(q, index, "epanechnikov", return_scanned=True)
    assert np.mean(scanned) < 0.05 * len(X)


def test_leaf_size_changes_nothing_but_rounding():
    X, Q = _data(3000, 300, 2, seed=6)
    a = KernelDensity(kernel="biweight", bandwidth=0.3, algorithm="tree", leaf_size=5).fit(X)
    b = KernelDensity(kernel="biweight", bandwidth=0.3, algorithm="tree", leaf_size=400).fit(X)
    bound, empty = _allowance(a, Q, np.float64)
    la, lb = a.score_samples(Q), b.score_samples(Q)
    np.testing.assert_array_equal(np.isneginf(la), empty)
    np.testing.assert_array_equal(np.isneginf(lb), empty)
    assert np.all(np.abs(la[~empty] - lb[~empty]) <= 2 * bound[~empty])


# ------------------------------------------------------------------------------ auto's choice
def test_auto_picks_tree_for_a_small_support_and_exact_otherwise():
    X, _ = _data(20000, 1, 2, seed=7)
    assert KernelDensity(kernel="epanechnikov", bandwidth=0.05).fit(X).effective_algorithm_ == "tree"
    # support covering the data: every point is in every query's support
    assert KernelDensity(kernel="epanechnikov", bandwidth=20.0).fit(X).effective_algorithm_ == "exact"
    # too few points for a tree to pay
    small = X[: _algorithm.TREE_MIN_N - 1]
    assert KernelDensity(kernel="epanechnikov", bandwidth=0.05).fit(small).effective_algorithm_ == "exact"
    # gaussian without tolerance: nothing to prune
    assert KernelDensity(bandwidth=0.05).fit(X).effective_algorithm_ == "exact"
    # other metrics and algorithm="exact"
    assert KernelDensity(kernel="epanechnikov", bandwidth=0.05, metric="manhattan").fit(X).effective_algorithm_ == "exact"
    assert KernelDensity(kernel="epanechnikov", bandwidth=0.05, algorithm="exact").fit(X).effective_algorithm_ == "exact"


@pytest.mark.parametrize("name", ["kd_tree", "ball_tree"])
def test_sklearn_tree_names_choose_as_auto(name):
    X, Q = _data(20000, 50, 2, seed=8)
    auto = KernelDensity(kernel="tophat", bandwidth=0.05).fit(X)
    named = KernelDensity(kernel="tophat", bandwidth=0.05, algorithm=name).fit(X)
    assert named.effective_algorithm_ == auto.effective_algorithm_ == "tree"
    np.testing.assert_array_equal(named.score_samples(Q), auto.score_samples(Q))


def test_auto_on_few_points_is_the_exact_engine_bit_for_bit():
    X, Q = _data(500, 100, 2, seed=9)
    auto = KernelDensity(kernel="epanechnikov", bandwidth=0.3).fit(X)
    exact = KernelDensity(kernel="epanechnikov", bandwidth=0.3, algorithm="exact").fit(X)
    assert auto.effective_algorithm_ == "exact"
    np.testing.assert_array_equal(auto.score_samples(Q), exact.score_samples(Q))


# ------------------------------------------------------------------------------------ errors
def test_tree_with_another_metric_is_refused():
    X, _ = _data(50, 1, 2, seed=10)
    with pytest.raises(ValueError, match=r"algorithm='tree' needs the euclidean metric; got metric='manhattan'"):
        KernelDensity(kernel="tophat", algorithm="tree", metric="manhattan").fit(X)


@pytest.mark.parametrize("name", ["rtol", "atol"])
@pytest.mark.parametrize("value", [np.nan, -1e-3, float("inf")])
def test_bad_tolerances_are_refused(name, value):
    X, _ = _data(50, 1, 2, seed=11)
    with pytest.raises(ValueError, match=rf"{name} must be a non-negative finite number; got {value!r}"):
        KernelDensity(**{name: value}).fit(X)


def test_unknown_algorithm_is_refused():
    X, _ = _data(50, 1, 2, seed=12)
    with pytest.raises(ValueError, match=r"algorithm must be one of \('auto', 'exact', 'tree', 'kd_tree', "
                                         r"'ball_tree', 'fft'\); got 'brute'"):
        KernelDensity(algorithm="brute").fit(X)
