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
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from .._backend._fastexp import FASTMATH
from ._kdtree_cpu import KDTree, build_order
from ._sched import next_task
from ._topk import INT_MAX, exact_sq_dist, topk_push, topk_sort

TILE = 256  # training points per panel (Numba screen), TILE_NARROW up to NARROW_D dimensions
TILE_NARROW = 512
NARROW_D = 16
QUERY_BLOCK = 256  # queries per parallel task
CHUNK = 32  # scan granularity inside a panel
MAX_NUMBA_D = 20  # above this the screen's dot products go to BLAS (faster from d = 24)
BLAS_TILE = 512  # training points per gemm block
BLAS_QUERY_BLOCK = 256  # queries per gemm block (and parallel task)
BOUNDS_MAX_D = 12  # panel skipping by ball bounds up to this dimension (it never pays above)

_U32 = 2.0**-24  # unit roundoff of float32
# Data spreads (max |x − mean|) the screen handles; outside, the k-d tree does the search.
_SCALE_MIN = 2.0**-300
_SCALE_MAX = 2.0**300


def _margin_coef(d, exact_f32_data):
    """Relative bound on the screen's error: |s̃ − s| ≤ coef · ((‖q‖ + R)² + r² + ‖q‖²).

    In scaled units (|coordinates| ≤ 1 on the training set; R = max ‖x‖): s̃ accumulates d
    float32 products and the rounded norm ‖x‖² (γ_{d+2} ≤ (d + 3)u of Σ|q_c x_c| + ‖x‖² ≤
    (‖q‖ + R)², whatever the summation order, BLAS included), the data are rounded to float32 (2u
    on each product, none for float32 data), and the threshold r² − ‖q‖² is rounded (u each).
    Doubled for safety: it only costs a few more exact evaluations.
    """
    terms = (d + 3) + (0 if exact_f32_data else 3) + 2
    return 2.0 * terms * _U32


# -------------------------------------------------------------------------- the screen


@njit(inline="always")
def _screen_thr(hd0, inv_s2, qq, qn, R, coef):
    """float32 threshold on s̃ = ‖x̃‖² − 2 q̃·x̃ keeping every pair that can enter the top-k."""
    if hd0 == math.inf:
        return np.float32(math.inf)
    t = hd0 * inv_s2
    a = qn + R
    y = t - qq + coef * (a * a + t + qq) + 1e-30
    y += 4.0 * _U32 * abs(y)  # rounding to float32 cannot fall below the bound
    return np.float32(y)


@njit(inline="always")
def _ball_lb(qs, mu, rho, t):
    """A lower bound on the squared (scaled) distance from qs to any point of ball t."""
    s = 0.0
    for c in range(qs.shape[0]):
        a = qs[c] - mu[t, c]
        s += a * a
    # Slack for rounding (relative) and for the float64 scaling of the data (absolute).
    g = math.sqrt(s) * (1.0 - 1e-10) - rho[t] * (1.0 + 1e-10) - 1e-13 * math.sqrt(qs.shape[0] + 1.0)
    return g * g if g > 0.0 else 0.0


@njit(inline="always")
def _nearest_centre(qs, mu):
    best = math.inf
    arg = 0
    for t in range(mu.shape[0]):
        s = 0.0
        for c in range(qs.shape[0]):
            a = qs[c] - mu[t, c]
            s += a * a
        if s < best:
            best = s
            arg = t
    return arg


@njit(cache=True)
def _visit_order(qs, i0, i1, mu, rho):
    """Panels sorted by how near they are to the centroid of queries i0..i1."""
    d = qs.shape[1]
    center = np.zeros(d)
    for i in range(i0, i1):
        for c in range(d):
            center[c] += qs[i, c]
    center /= max(1, i1 - i0)
    key = np.empty(mu.shape[0])
    for t in range(mu.shape[0]):
        s = 0.0
        for c in range(d):
            a = center[c] - mu[t, c]
            s += a * a
        key[t] = math.sqrt(s) - rho[t]
    return np.argsort(key)


@njit(inline="always", fastmath=FASTMATH)
def _panel_pair(qa, qb, panel, xxp, buf, ta, tb, dims, one):
    """Screen values of one panel for two queries (qa, qb hold −2q̃).

    Returns 1 if query a keeps a pair, 2 if b does, 3 if both, 0 if neither."""
    D = len(dims)
    zero = one - one
    cnt_a = zero
    cnt_b = zero
    # Compile-time trip count and buffer size (D is a compile-time constant): with runtime
    # ones LLVM stops vectorising this loop for D > 16 (measured 7x slower at D = 32).
    T = TILE_NARROW if D <= NARROW_D else TILE
    for jj in range(T):
        x0 = xxp[jj]
        sa = x0
        sb = x0
        for c in range(D):
            v = panel[c, jj]
            sa += qa[c] * v
            sb += qb[c] * v
        buf[0, jj] = sa
        buf[1, jj] = sb
        cnt_a += one if sa < ta else zero
        cnt_b += one if sb < tb else zero
    return (1 if cnt_a > zero else 0) + (2 if cnt_b > zero else 0)


@njit(inline="always", fastmath=FASTMATH)
def _row_plus_norms(g, xx, j0, nt, buf, thr, one):
    """Screen values ‖x̃‖² + g of one gemm row (g holds −2 q̃·x̃); True if any is kept."""
    zero = one - one
    cnt = zero
    u0 = np.uint64(j0)
    for jj in range(np.uint64(nt)):
        s = xx[u0 + jj] + g[jj]
        buf[jj] = s
        cnt += one if s < thr else zero
    return cnt > zero


@njit(inline="always", fastmath=FASTMATH)
def _chunk_hit(row, c0, c1, thr, one):
    zero = one - one
    cnt = zero
    for jj in range(np.uint64(c0), np.uint64(c1)):
        cnt += one if row[jj] < thr else zero
    return cnt > zero


@njit(inline="always", fastmath=FASTMATH)
def _scan(row, nt, j0, a, q, skip, train, perm, hd, hi, k, thr, lim, inv_s2, qq, qn, R, coef, one):
    """Exact evaluation of the kept pairs of one screened row (layout positions j0..j0+nt).

    ``train`` is the original data in layout order (so that the rows read here are contiguous
    with the panel just screened) and ``perm`` maps positions to original indices. Updates query
    a's top-k (hd, hi), its screen threshold thr[a] and its bound lim[a]."""
    th = thr[a]
    for c0 in range(0, nt, CHUNK):
        c1 = min(nt, c0 + CHUNK)
        if not _chunk_hit(row, c0, c1, th, one):
            continue
        for jj in range(c0, c1):
            if row[jj] < th:
                j = perm[j0 + jj]
                if j == skip:
                    continue
                if topk_push(hd, hi, k, exact_sq_dist(train, j0 + jj, q), j):
                    th = _screen_thr(hd[0], inv_s2, qq, qn, R, coef)
    thr[a] = th
    lim[a] = hd[0] * inv_s2


@njit(cache=True)
def _write_block(hd, hi, qorder, i0, nq, k, out_d, out_i):
    for a in range(nq):
        topk_sort(hd[a], hi[a], k)
        i = qorder[i0 + a]
        for r in range(k):
            out_d[i, r] = math.sqrt(hd[a, r])
            out_i[i, r] = hi[a, r]


@njit(fastmath=FASTMATH, cache=True)
def _block_panels(i0, i1, qorder, queries, q2, qq, qn, qs, train, perm, panels, xxp, mu, rho, R,
                  inv_s2, coef, k, exclude_self, use_bounds, out_d, out_i, dims, one):
    """Queries i0..i1 of the sorted order, in pairs, against every panel (nearest first)."""
    n = train.shape[0]
    nq = i1 - i0
    hd = np.full((nq, k), math.inf)
    hi = np.full((nq, k), INT_MAX, dtype=np.int64)
    thr = np.full(nq, np.float32(math.inf))
    lim = np.full(nq, math.inf)
    tile = panels.shape[2]
    buf = np.empty((2, TILE_NARROW), dtype=np.float32)  # a constant size: see _panel_pair
    # Seed: each query first screens the panel whose centre is nearest to it, so that its
    # threshold starts near its final value (fewer kept pairs and top-k updates later on).
    seed = np.empty(nq, dtype=np.int64)
    for a in range(nq):
        ia = i0 + a
        seed[a] = _nearest_centre(qs[ia], mu)
        t = seed[a]
        j0 = t * tile
        if _panel_pair(q2[ia], q2[ia], panels[t], xxp[t], buf, thr[a], np.float32(-math.inf), dims, one) & 1:
            oa = qorder[ia]
            _scan(buf[0], min(tile, n - j0), j0, a, queries[ia], oa if exclude_self else -1, train,
                  perm, hd[a], hi[a], k, thr, lim, inv_s2, qq[ia], qn[ia], R, coef, one)
    visit = _visit_order(qs, i0, i1, mu, rho)
    for p in range(visit.shape[0]):
        t = visit[p]
        j0 = t * tile
        nt = min(tile, n - j0)
        for a in range(0, nq, 2):
            b = a + 1 if a + 1 < nq else a
            ia = i0 + a
            ib = i0 + b
            if use_bounds:
                if _ball_lb(qs[ia], mu, rho, t) > lim[a] and _ball_lb(qs[ib], mu, rho, t) > lim[b]:
                    continue
            hit = _panel_pair(q2[ia], q2[ib], panels[t], xxp[t], buf, thr[a], thr[b], dims, one)
            if hit & 1 and seed[a] != t:
                oa = qorder[ia]
                _scan(buf[0], nt, j0, a, queries[ia], oa if exclude_self else -1, train, perm,
                      hd[a], hi[a], k, thr, lim, inv_s2, qq[ia], qn[ia], R, coef, one)
            if hit & 2 and b != a and seed[b] != t:
                ob = qorder[ib]
                _scan(buf[1], nt, j0, b, queries[ib], ob if exclude_self else -1, train, perm,
                      hd[b], hi[b], k, thr, lim, inv_s2, qq[ib], qn[ib], R, coef, one)
    _write_block(hd, hi, qorder, i0, nq, k, out_d, out_i)


@njit(fastmath=FASTMATH, cache=True)
def _block_blas(i0, i1, qorder, queries, q2, qq, qn, qs, train, perm, x32, xx, mu, rho, R,
                inv_s2, coef, k, exclude_self, out_d, out_i, one):
    """Queries i0..i1 of the sorted order against gemm blocks of BLAS_TILE points."""
    n = train.shape[0]
    nq = i1 - i0
    hd = np.full((nq, k), math.inf)
    hi = np.full((nq, k), INT_MAX, dtype=np.int64)
    thr = np.full(nq, np.float32(math.inf))
    lim = np.full(nq, math.inf)
    buf = np.empty(BLAS_TILE, dtype=np.float32)
    g = np.empty((nq, BLAS_TILE), dtype=np.float32)
    qb = q2[i0:i1]
    visit = _visit_order(qs, i0, i1, mu, rho)
    for p in range(visit.shape[0]):
        t = visit[p]
        j0 = t * BLAS_TILE
        j1 = min(n, j0 + BLAS_TILE)
        nt = j1 - j0
        if nt == BLAS_TILE:
            np.dot(qb, x32[j0:j1].T, g)
            gv = g
        else:
            gv = np.dot(qb, x32[j0:j1].T)
        for a in range(nq):
            ia = i0 + a
            if _row_plus_norms(gv[a], xx, j0, nt, buf, thr[a], one):
                oa = qorder[ia]
                _scan(buf, nt, j0, a, queries[ia], oa if exclude_self else -1, train, perm,
                      hd[a], hi[a], k, thr, lim, inv_s2, qq[ia], qn[ia], R, coef, one)
    _write_block(hd, hi, qorder, i0, nq, k, out_d, out_i)


# ------------------------------------------------------------------- parallel drivers
# Thin on purpose: parfor compilation of a large body costs seconds; the work lives in the
# serial functions above.


@njit(parallel=True, cache=True)
def knn_panels(qorder, queries, q2, qq, qn, qs, train, perm, panels, xxp, mu, rho, R, inv_s2,
               coef, k, exclude_self, block, n_workers, use_bounds, out_d, out_i, dims, one):
    m = qorder.shape[0]
    n_blocks = (m + block - 1) // block
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(n_workers):  # one iteration per thread; blocks handed out dynamically
        while True:
            b = next_task(counter)
            if b >= n_blocks:
                break
            i0 = b * block
            _block_panels(i0, min(m, i0 + block), qorder, queries, q2, qq, qn, qs, train, perm,
                          panels, xxp, mu, rho, R, inv_s2, coef, k, exclude_self, use_bounds, out_d,
                          out_i, dims, one)


@njit(parallel=True, cache=True)
def knn_blas(qorder, queries, q2, qq, qn, qs, train, perm, x32, xx, mu, rho, R, inv_s2, coef, k,
             exclude_self, block, n_workers, out_d, out_i, one):
    m = qorder.shape[0]
    n_blocks = (m + block - 1) // block
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(n_workers):  # one iteration per thread; blocks handed out dynamically
        while True:
            b = next_task(counter)
            if b >= n_blocks:
                break
            i0 = b * block
            _block_blas(i0, min(m, i0 + block), qorder, queries, q2, qq, qn, qs, train, perm, x32,
                        xx, mu, rho, R, inv_s2, coef, k, exclude_self, out_d, out_i, one)


# ------------------------------------------------------------------------- host side


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
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer; got {k!r}")
    k = int(k)
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
