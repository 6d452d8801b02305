"""Brute-force k-nearest neighbours on the CPU (Numba): the ``knn_distances`` op.

For each query, the k training points nearest in euclidean distance, sorted by (distance,
index): ties go to the smaller training index, whatever the thread count or tiling.

Design (see DESIGN.md, "Numerics"):

* **Screen in float32, decide in float64.** Training and query points are centred and scaled
  by a power of two, rounded to float32, and every pair is screened with the Gram form
  s = ‖x‖² − 2 q·x (‖q‖² is folded into the threshold): one multiply-add per dimension in
  float32 lanes, twice as many per instruction as float64. The screen keeps a pair when s is
  below the query's current k-th squared distance *plus a rigorous bound on the screen's
  rounding error* (``_margin_coef``). A kept pair gets its exact distance, Σ (x − q)² in float64
  on the original data (``exact_sq_dist``), and competes for the query's top-k on that value.
  The result is therefore the exact k smallest (distance, index) pairs for float32 and float64
  data alike; the screen only decides how much exact work is done (a handful of pairs per query
  once its top-k is full).
* **Panels.** The float32 training points are stored in panels of ``TILE_NARROW`` (d ≤
  ``NARROW_D``) or ``TILE`` points, (width, tile) each, contiguous, in k-d order (a panel is a
  cell of a median-split partition); the width is d rounded up to even (a zero column), so
  that fewer variants are compiled. Up to ``MAX_NUMBA_D`` dimensions the screen is a Numba loop
  over a panel, vectorised over points, the width a compile-time constant (a ``dims`` tuple, so
  LLVM unrolls it), two queries per pass so that each load feeds two multiply-adds: one
  float32 multiply-add per pair and dimension, 256-bit vectors (Numba's LLVM prefers them on
  this CPU), about one pair per cycle per core at d = 16. It writes the screen values to a small buffer
  and counts the kept ones; only a panel with a kept pair is scanned (by chunks of ``CHUNK``,
  each first tested by a vectorised count). Above ``MAX_NUMBA_D`` dimensions the q·x block of
  ``BLAS_QUERY_BLOCK`` queries × ``BLAS_TILE`` points is one float32 gemm (``np.dot`` inside
  Numba calls BLAS, single-threaded inside the parallel loop), followed by the same scan.
* **Order.** Queries are put in k-d order too, and each block of queries visits the panels
  nearest to it first, so its thresholds are nearly final after a few panels and later panels
  are rejected by the vectorised count alone. In low dimension a panel whose ball (centre,
  radius) is farther from both queries of a pair than their k-th distances is skipped.
* Blocks of queries are handed to the threads dynamically (``_sched.next_task``); each query
  is handled by one thread from start to end, so the results do not depend on the threads.
  Memory is O(n·d + m·k): the layout keeps a float32 copy and a float64 copy (in k-d order,
  for the exact distances) of the training data.
* Measured per core (one thread, process time, n = 50,000 / 20,000, k = 10): d = 4 4.8e9,
  d = 16 1.9e9, d = 32 1.1e9 (BLAS), d = 64 7e8 pairs/s; the float32 screen alone runs at
  2.7e9 pairs/s at d = 16, the rest is the exact work on kept pairs and the top-k updates.

The Numba kernels (the screen, the exact scan of kept pairs, the parallel drivers) live in
``_knn_screen``; this module is the host side: the training layout (``prepare_train``,
``BruteIndex``), the scaling, ordering and blocking of the queries (``_brute``), and the op.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from .._backend._validation import Integer, check_parameter
from ._kdtree_build import build_order
from ._kdtree_cpu import KDTree
from ._knn_screen import BLAS_TILE, NARROW_D, TILE, TILE_NARROW, _margin_coef, knn_blas, knn_panels

QUERY_BLOCK = 256  # queries per parallel task
MAX_NUMBA_D = 20  # above this the screen's dot products go to BLAS (faster from d = 24)
BLAS_QUERY_BLOCK = 256  # queries per gemm block (and parallel task)
BOUNDS_MAX_D = 12  # panel skipping by ball bounds up to this dimension (it never pays above)

# Data spreads (max |x − mean|) the screen handles; outside, the k-d tree does the search.
_SCALE_MIN = 2.0**-300
_SCALE_MAX = 2.0**300


class BruteIndex(NamedTuple):
    """A training set laid out for the screen (built once per fit, reused by every query)."""

    train: np.ndarray  # (n, d) the original data, C-contiguous, float32 or float64
    train_sorted: np.ndarray  # the same rows in layout (k-d) order
    center: np.ndarray  # (d,) float64
    inv_scale: float  # a power of two: scaled = (x − center) · inv_scale, |scaled| ≤ 1
    perm: np.ndarray  # (n,) original index of each position of the layout (k-d order)
    blas: bool  # x32 are gemm rows (True) or Numba panels (False)
    x32: np.ndarray  # panels (n_tiles, d, TILE) or rows (n, d); float32, scaled, in k-d order
    xx: np.ndarray  # ‖x̃‖² (float32): (n_tiles, TILE) padded with +inf, or (n,)
    mu: np.ndarray  # (n_tiles, d) float64 centre of each tile (scaled units)
    rho: np.ndarray  # (n_tiles,) float64 radius of each tile about its centre
    R: float  # max ‖x‖ (scaled units)


def _pow2_at_least(v):
    if not np.isfinite(v) or v <= 0:
        return 1.0
    return float(2.0 ** math.ceil(math.log2(v)))


def prepare_train(train) -> BruteIndex:
    """Centre, scale, order and lay out ``train`` (n, d) for ``knn_distances``."""
    train = np.ascontiguousarray(train)
    if train.dtype not in (np.float32, np.float64):
        train = train.astype(np.float64)
    n, d = train.shape
    center = train.mean(axis=0, dtype=np.float64) if n else np.zeros(d)
    xs = train.astype(np.float64) - center
    spread = float(np.max(np.abs(xs))) if xs.size else 0.0
    if spread != 0.0 and not _SCALE_MIN <= spread <= _SCALE_MAX:
        # Squared distances at this scale over- or underflow; the float32 screen cannot be
        # scaled for them. The k-d tree computes in float64 only (exact, slower in high d).
        return KDTree(train)
    inv_scale = 1.0 / _pow2_at_least(spread)
    xs *= inv_scale
    return _layout(train, center, inv_scale, xs)


def _layout(train, center, inv_scale, xs) -> BruteIndex:
    n, d = xs.shape
    blas = d > MAX_NUMBA_D
    tile = BLAS_TILE if blas else (TILE_NARROW if d <= NARROW_D else TILE)
    perm = build_order(xs, tile, True, numba.get_num_threads())[0] if n > tile else np.arange(n)
    xs = xs[perm]
    # float64 whatever the input dtype, so that one compiled kernel serves both
    train_sorted = np.ascontiguousarray(train[perm], dtype=np.float64)
    x32 = xs.astype(np.float32)
    if not blas and d % 2:  # panels have an even width (fewer compiled variants): a zero column
        x32 = np.hstack([x32, np.zeros((n, 1), dtype=np.float32)])
    x64 = x32.astype(np.float64)
    xx = np.einsum("ij,ij->i", x64, x64).astype(np.float32)
    n_tiles = (n + tile - 1) // tile
    starts = np.arange(0, n, tile)
    counts = np.minimum(tile, n - starts)
    mu = np.add.reduceat(xs, starts, axis=0) / counts[:, None] if n else np.zeros((0, d))
    dev = xs - np.repeat(mu, counts, axis=0)
    rho = np.maximum.reduceat(np.sqrt(np.einsum("ij,ij->i", dev, dev)), starts) if n else np.zeros(0)
    R = float(np.sqrt(np.max(np.einsum("ij,ij->i", xs, xs)))) if n else 0.0
    if blas:
        return BruteIndex(train, train_sorted, center, inv_scale, perm, True,
                          np.ascontiguousarray(x32), xx, mu, rho, R)
    padded = n_tiles * tile
    width = x32.shape[1]
    panels = np.zeros((padded, width), dtype=np.float32)
    panels[:n] = x32
    panels = np.ascontiguousarray(panels.reshape(n_tiles, tile, width).transpose(0, 2, 1))
    xxp = np.full(padded, np.inf, dtype=np.float32)
    xxp[:n] = xx
    return BruteIndex(train, train_sorted, center, inv_scale, perm, False, panels,
                      xxp.reshape(n_tiles, tile), mu, rho, R)


ALGORITHMS = ("brute", "kd_tree")


def knn_index(train, algorithm="brute"):
    """Prepare ``train`` (n, d) once for repeated ``knn_distances`` calls.

    ``algorithm="brute"`` lays it out for the float32 screen (``BruteIndex``); ``"kd_tree"``
    builds the k-d tree of ``_kdtree_cpu`` (for low dimension). Data spread over more than
    2^300 or less than 2^-300 (squared distances over- or underflow float64 there) cannot be
    scaled for the screen and gets the tree whatever ``algorithm`` says.
    """
    if algorithm == "brute":
        return prepare_train(train)
    if algorithm == "kd_tree":
        return KDTree(train)
    raise ValueError(f"algorithm must be one of {ALGORITHMS}; got {algorithm!r}")


def check_k(k, n, m, exclude_self):
    """``k`` as an int, checked against n training points and m queries (every backend's checks)."""
    k = check_parameter("k", k, Integer())
    available = n - 1 if exclude_self else n
    if not 1 <= k <= available:
        what = "n_samples - 1 (leave-one-out)" if exclude_self else "n_samples"
        raise ValueError(f"k must be between 1 and {what} = {available}; got {k}")
    if exclude_self and m != n:
        raise ValueError(f"exclude_self=True needs the training points as queries (m = n = {n}); got m = {m}")
    return k


def knn_distances(queries, train, k, exclude_self=False, *, algorithm="brute", index=None):
    """The k nearest training points of each query: ``(distances (m, k), indices (m, k))``.

    ``queries`` (m, d) and ``train`` (n, d) must be finite, float32 or float64 (anything else is
    converted to float64); distances come back in the queries' dtype, sorted ascending, ties
    broken by the smaller index, and are exact: √ of Σ (x − q)² summed in float64, whichever
    engine found them. ``exclude_self=True`` (the queries are the training points, m = n) leaves
    each point out of its own neighbours. ``algorithm`` is "brute" or "kd_tree"; ``index`` may
    pass a ``knn_index(train, algorithm)`` result to reuse (``train`` and ``algorithm`` are then
    ignored). Needs 1 ≤ k ≤ n (k ≤ n − 1 with ``exclude_self``).
    """
    if index is None:
        index = knn_index(train, algorithm)
    train = index.train
    queries = np.ascontiguousarray(queries)
    if queries.dtype not in (np.float32, np.float64):
        queries = queries.astype(np.float64)
    n, d = train.shape
    if queries.ndim != 2 or queries.shape[1] != d:
        raise ValueError(f"queries must have shape (m, {d}); got {queries.shape}")
    m = queries.shape[0]
    k = check_k(k, n, m, exclude_self)
    if m == 0:
        return np.empty((0, k), dtype=queries.dtype), np.empty((0, k), dtype=np.int64)
    if isinstance(index, KDTree):
        return index.query(queries, k, bool(exclude_self))
    return _brute(queries, index, k, bool(exclude_self))


def _brute(queries, index, k, exclude_self):
    train = index.train
    m, d = queries.shape
    out_d = np.empty((m, k))
    out_i = np.empty((m, k), dtype=np.int64)
    # Queries near ±1.8e308 against small-scale data overflow here to inf; that is "far outside"
    # and takes the exact fallback below, so no warning.
    with np.errstate(over="ignore"):
        qs = (queries.astype(np.float64) - index.center) * index.inv_scale
    qmax = float(np.max(np.abs(qs)))
    if qmax > 2.0**40:  # queries far outside the data: screen on a wider common scale (rare)
        if qmax / index.inv_scale > _SCALE_MAX:
            return KDTree(train).query(queries, k, exclude_self)
        inv_scale = index.inv_scale / _pow2_at_least(qmax)
        xs = (train.astype(np.float64) - index.center) * inv_scale
        return _brute(queries, _layout(train, index.center, inv_scale, xs), k, exclude_self)
    # Blocks as large as measured best, smaller when there are few queries so that every thread
    # has several (the results do not depend on the block size).
    block = BLAS_QUERY_BLOCK if index.blas else QUERY_BLOCK
    block = int(min(block, max(16, 2 * (m // (8 * numba.get_num_threads()) // 2))))
    qorder = build_order(qs, block, True, numba.get_num_threads())[0] if m > block else np.arange(m)
    qs = np.ascontiguousarray(qs[qorder])
    queries_sorted = np.ascontiguousarray(queries[qorder], dtype=np.float64)
    q2 = (-2.0 * qs).astype(np.float32)
    width = index.x32.shape[1]
    if width != d:
        q2 = np.ascontiguousarray(np.hstack([q2, np.zeros((m, width - d), dtype=np.float32)]))
    qq = np.einsum("ij,ij->i", qs, qs)
    qn = np.sqrt(qq)
    inv_s2 = index.inv_scale**2
    exact_f32 = train.dtype == np.float32 and queries.dtype == np.float32
    coef = _margin_coef(d, exact_f32)
    one = np.float32(1.0)
    args = (qorder, queries_sorted, q2, qq, qn, qs, index.train_sorted, index.perm, index.x32,
            index.xx, index.mu, index.rho, index.R, inv_s2, coef, k, exclude_self, block,
            numba.get_num_threads())
    if index.blas:
        from threadpoolctl import threadpool_limits

        # One BLAS thread per Numba thread: the parallelism is over query blocks.
        with threadpool_limits(1, user_api="blas"):
            knn_blas(*args, out_d, out_i, one)
    else:
        knn_panels(*args, d <= BOUNDS_MAX_D, out_d, out_i, (0,) * width, one)
    return out_d.astype(queries.dtype, copy=False), out_i
