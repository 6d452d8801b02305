"""The exact kNN engines (brute force with the float32 screen, k-d tree) against a brute-force
NumPy oracle: distances to float64 rounding, indices equal (ties: smaller index first)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastdensity
from fastdensity.knn._knn_cpu import knn_distances, knn_index
from fastdensity.knn._knn_screen import BLAS_TILE


def numpy_knn(Q, X, k, exclude_self=False):
    """Oracle: every distance in float64, a stable sort (equal distances: smaller index first)."""
    Q = np.asarray(Q, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    D2 = ((Q[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    if exclude_self:
        np.fill_diagonal(D2, np.inf)
    idx = np.argsort(D2, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(D2, idx, axis=1)), idx


def data(n, m, d, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.standard_normal((m, d)).astype(dtype)


# Several panels / gemm blocks and several query blocks in every case; d = 1, 3 pad the Numba
# screen to an even width, d = 40 runs the BLAS screen. (Each screen width is a compiled
# variant: the suite keeps to widths 2, 4 and 16.)
CASES = [(1, 1500), (2, 1500), (3, 1500), (16, 1500), (40, BLAS_TILE + 300)]


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
@pytest.mark.parametrize("d, n", CASES)
def test_matches_numpy_oracle(d, n, algorithm):
    X, Q = data(n, 150, d, seed=d)
    dist, ind = knn_distances(Q, X, 7, algorithm=algorithm)
    ref_d, ref_i = numpy_knn(Q, X, 7)
    assert dist.dtype == np.float64 and ind.dtype == np.int64
    np.testing.assert_allclose(dist, ref_d, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(ind, ref_i)


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
@pytest.mark.parametrize("d", [3, 16, 40])
def test_float32(d, algorithm):
    X, Q = data(BLAS_TILE + 100, 100, d, seed=1, dtype=np.float32)
    dist, ind = knn_distances(Q, X, 5, algorithm=algorithm)
    ref_d, ref_i = numpy_knn(Q, X, 5)  # on the float32 values, in float64
    assert dist.dtype == np.float32
    np.testing.assert_allclose(dist, ref_d, rtol=1e-6)
    np.testing.assert_array_equal(ind, ref_i)


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
@pytest.mark.parametrize("d", [2, 16])
def test_exclude_self(d, algorithm):
    X, _ = data(600, 1, d, seed=2)
    dist, ind = knn_distances(X, X, 6, exclude_self=True, algorithm=algorithm)
    ref_d, ref_i = numpy_knn(X, X, 6, exclude_self=True)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(ind, ref_i)
    assert not np.any(ind == np.arange(600)[:, None])


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
def test_k_extremes(algorithm):
    """k = 1, k = n, and k = n − 1 leave-one-out; k > 32 runs the heap instead of the sorted list."""
    X, Q = data(60, 20, 3, seed=3)
    for k, exclude in [(1, False), (60, False), (59, True), (40, False)]:
        queries = X if exclude else Q
        dist, ind = knn_distances(queries, X, k, exclude_self=exclude, algorithm=algorithm)
        ref_d, ref_i = numpy_knn(queries, X, k, exclude_self=exclude)
        np.testing.assert_allclose(dist, ref_d, rtol=1e-12, atol=0)
        np.testing.assert_array_equal(ind, ref_i)


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
@pytest.mark.parametrize("d", [1, 2, 16])
def test_ties_go_to_the_smaller_index(d, algorithm):
    """Integer grid data: many exactly equal distances; the order is (distance, index)."""
    rng = np.random.default_rng(4)
    X = rng.integers(0, 3, size=(1200, d)).astype(np.float64)  # several panels at every width
    Q = rng.integers(0, 3, size=(90, d)).astype(np.float64)
    dist, ind = knn_distances(Q, X, 25, algorithm=algorithm)
    ref_d, ref_i = numpy_knn(Q, X, 25)
    np.testing.assert_array_equal(dist, ref_d)
    np.testing.assert_array_equal(ind, ref_i)


@pytest.mark.parametrize("d", [2, 3])
def test_tree_and_brute_agree_bitwise(d):
    X, Q = data(5000, 2000, d, seed=5)
    a = knn_distances(Q, X, 10, algorithm="brute")
    b = knn_distances(Q, X, 10, algorithm="kd_tree")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
def test_duplicates_give_zero_distances(algorithm):
    X, _ = data(300, 1, 2, seed=6)
    X = np.vstack([X, np.repeat(X[:3], 5, axis=0)])
    dist, ind = knn_distances(X[:3], X, 6, algorithm=algorithm)
    np.testing.assert_array_equal(dist[:, :6], 0.0)
    ref_d, ref_i = numpy_knn(X[:3], X, 6)
    np.testing.assert_array_equal(ind, ref_i)


def test_offset_and_far_queries():
    """A large common offset (centring), queries 1e15 away (the wide-scale path), tiny spread."""
    rng = np.random.default_rng(7)
    X = 1e8 + 1e-3 * rng.standard_normal((700, 3))
    Q = np.vstack([1e8 + 1e-3 * rng.standard_normal((40, 3)), np.full((3, 3), 1e15), np.full((2, 3), -3e20)])
    dist, ind = knn_distances(Q, X, 4)
    ref_d, ref_i = numpy_knn(Q, X, 4)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(ind[:40], ref_i[:40])
    # far queries: every distance is equal to rounding; the set of candidates is still exact
    np.testing.assert_allclose(dist[40:], ref_d[40:], rtol=1e-12)


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_extreme_scales(scale):
    """Spreads whose squares under- or overflow float64 go to the tree: the oracle's answer
    (zeros or infinities, ties by index), never an error or an invalid index."""
    X, Q = data(500, 20, 3, seed=10)
    with np.errstate(over="ignore", under="ignore"):
        ref_d, ref_i = numpy_knn(Q * scale, X * scale, 4)
    dist, ind = knn_distances(Q * scale, X * scale, 4)
    np.testing.assert_array_equal(ind, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-12)


def test_thread_count_does_not_change_results():
    X, Q = data(3000, 500, 16, seed=8)
    with fastdensity.threads(1):
        one = knn_distances(Q, X, 10)
    with fastdensity.threads(2):
        two = knn_distances(Q, X, 10)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_index_is_reusable():
    X, Q = data(800, 50, 4, seed=9)
    index = knn_index(X, "brute")
    a = knn_distances(Q, None, 3, index=index)
    b = knn_distances(Q[::-1], None, 3, index=index)
    np.testing.assert_array_equal(a[1], b[1][::-1])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), algorithm=st.sampled_from(["brute", "kd_tree"]))
def test_permuting_training_rows_permutes_indices(seed, algorithm):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((400, 3))
    Q = rng.standard_normal((30, 3))
    perm = rng.permutation(400)
    d0, i0 = knn_distances(Q, X, 5, algorithm=algorithm)
    d1, i1 = knn_distances(Q, X[perm], 5, algorithm=algorithm)
    np.testing.assert_array_equal(d0, d1)
    np.testing.assert_array_equal(i0, perm[i1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 0}, "k must be between 1 and n_samples = 50"),
        ({"k": 51}, "k must be between 1 and n_samples = 50"),
        ({"k": 50, "exclude_self": True}, r"n_samples - 1 \(leave-one-out\) = 49"),
        ({"k": 2.0}, "k must be an integer"),
        ({"k": 3, "algorithm": "ball_tree"}, "algorithm must be one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    X, _ = data(50, 1, 2)
    with pytest.raises((ValueError, TypeError), match=match):
        knn_distances(X, X, **kwargs)


def test_bad_shapes():
    X, Q = data(50, 5, 3)
    with pytest.raises(ValueError, match=r"queries must have shape \(m, 3\)"):
        knn_distances(Q[:, :2], X, 3)
    with pytest.raises(ValueError, match="exclude_self=True needs the training points as queries"):
        knn_distances(Q, X, 3, exclude_self=True)
