"""Exact sums of the compact kernels that visit only the training points within the support.

For compact kernels (tophat, epanechnikov, linear, cosine, biweight, triweight) a training point
contributes only within radius λ_j of the query in whitened coordinates (λ_j = 1 without
adaptive bandwidths). Each query walks the k-d tree of ``_tree_index`` depth first, left child
first, skipping every node whose box (or, from d = 3 on, its ball around the node's centroid)
lies beyond the node's ``cut`` (where the exact engine's
computed kernel argument is ≥ 1 for every point inside, so that each of them adds exactly 0
there), and sums every leaf it reaches with the exact engine's tile function
(``_kde_cpu._tile_sum_unrolled`` / ``_tile_sum_buffered``) over the same stored values.

So the result is the exact engine's sum over the same non-zero terms, computed with the same
operations per term, in a different order: the two differ only by the rounding of the sums (see
``tests/kde/test_kde_pruned.py`` for the bound). A leaf's sum is formed in the working dtype and
added in float64, as the exact engine does per tile; a plain sum below the exact engine's
``tiny`` threshold is redone in log space over the same leaves, and a sum of exactly 0 (no
training point's support holds the query) is −inf, as in the exact engine.

The queries are handed to the threads in tasks of ``QUERY_TASK`` (``knn._sched.next_task``), in
the order of the leaf their descent reaches (neighbouring queries visit the same leaves, so the
leaves stay in cache); each query is summed by one thread in a fixed order, so results do not
depend on the thread count.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from .._backend._fastexp import FASTMATH
from .._backend._numba_drivers import serial_and_parallel
from ..knn._kdtree_query import GROUP_MAX, query_groups
from ..knn._sched import next_task
from ._kde_cpu import (CONSTANTS, MAX_UNROLLED_D, TILE, _finish, _log_profile, _tile_sum_buffered,
                       _tile_sum_unrolled, lse_push, make_kernel_marker)
from ._tree_index import BALL_FROM_D, ball_shrink, node_lb2

QUERY_TASK = 64  # queries per task handed to a thread
SORT_QUERIES_FROM = 4096  # fewer queries run in the caller's order (sorting costs more than it saves)
SERIAL_BELOW = 256  # fewer queries run on the calling thread (waking the team costs more)
# A node within the support's reach that holds at most this many leaves' worth of points is
# summed whole (its points are contiguous; the points outside the support add exactly 0, as in the
# exact engine): short loops and node visits cost more than the extra points (measured). At most
# TILE points, so that a sum in the working dtype is never longer than the exact engine's.
SCAN_NODES_BELOW = 4


@njit(inline="always", fastmath=FASTMATH)
def _walk_sum(q, train_t, weights, inv_scale2, adaptive, code, start, end, lo, hi, mu, radius,
              shrink, cut, depth, scan_below, stack, dims, r2buf, c):
    """(Σ_j w_j k(r_j) over the leaves within the support, float64 across leaves; points scanned)."""
    first_leaf = (1 << depth) - 1
    use_ball = q.shape[0] >= BALL_FROM_D
    total = 0.0
    scanned = 0
    stack[0] = 0
    sp = 1
    while sp > 0:
        sp -= 1
        node = stack[sp]
        if node_lb2(q, node, lo, hi, mu, radius, shrink, use_ball) >= cut[node]:
            continue
        if node >= first_leaf or end[node] - start[node] <= scan_below:
            s = start[node]
            e = end[node]
            scanned += e - s
            if len(dims) > 0:
                total += _tile_sum_unrolled(q, train_t, weights, inv_scale2, adaptive, code, s, e,
                                            dims, c)
            else:
                total += _tile_sum_buffered(q, train_t, weights, inv_scale2, adaptive, code, s, e,
                                            r2buf, c)
        else:
            stack[sp] = 2 * node + 2
            stack[sp + 1] = 2 * node + 1
            sp += 2
    return total, scanned


@njit(inline="always")
def _walk_logsum(q, train_t, log_weights, inv_scale2, adaptive, code, start, end, lo, hi, mu,
                 radius, shrink, cut, depth, scan_below, stack):
    """The exact engine's log-space sum (``_kde_cpu._logsum_slow``) over the same leaves."""
    d = train_t.shape[0]
    first_leaf = (1 << depth) - 1
    use_ball = d >= BALL_FROM_D
    best = -math.inf
    total = 0.0
    stack[0] = 0
    sp = 1
    while sp > 0:
        sp -= 1
        node = stack[sp]
        if node_lb2(q, node, lo, hi, mu, radius, shrink, use_ball) >= cut[node]:
            continue
        if node >= first_leaf or end[node] - start[node] <= scan_below:
            for j in range(start[node], end[node]):
                r2 = 0.0
                for k in range(d):
                    a = np.float64(train_t[k, j]) - np.float64(q[k])
                    r2 += a * a
                if adaptive:
                    r2 *= inv_scale2[j]
                best, total = lse_push(best, total, log_weights[j] + _log_profile(code, r2))
        else:
            stack[sp] = 2 * node + 2
            stack[sp + 1] = 2 * node + 1
            sp += 2
    if best == -math.inf:
        return -math.inf
    return best + math.log(total)


@njit(fastmath=FASTMATH, cache=True)
def _query_pruned(q, train_t, weights, log_weights, shift, inv_scale2, adaptive, kernel_marker,
                  tiny, start, end, lo, hi, mu, radius, shrink, cut, depth, scan_below, stack, dims,
                  r2buf, c):
    code = len(kernel_marker) - 1
    total, scanned = _walk_sum(q, train_t, weights, inv_scale2, adaptive, code, start, end, lo, hi,
                               mu, radius, shrink, cut, depth, scan_below, stack, dims, r2buf, c)
    out = _finish(total, tiny, shift, code)
    if math.isnan(out):
        out = _walk_logsum(q, train_t, log_weights, inv_scale2, adaptive, code, start, end, lo, hi,
                           mu, radius, shrink, cut, depth, scan_below, stack)
    return out, scanned


def _kde_pruned(queries, order, train_t, weights, log_weights, shift, inv_scale2, adaptive,
                kernel_marker, tiny, start, end, lo, hi, mu, radius, shrink, cut, depth, scan_below,
                dims, c, out, scanned, n_workers):
    m = queries.shape[0]
    n_tasks = (m + QUERY_TASK - 1) // QUERY_TASK
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(n_workers):  # one iteration per thread; tasks handed out dynamically
        stack = np.empty(2 * depth + 8, dtype=np.int64)
        r2buf = np.empty(max(scan_below, 1), dtype=train_t.dtype)
        while True:
            t = next_task(counter)
            if t >= n_tasks:
                break
            for ii in range(t * QUERY_TASK, min(m, (t + 1) * QUERY_TASK)):
                i = order[ii]
                value, count = _query_pruned(
                    queries[i], train_t, weights, log_weights, shift, inv_scale2, adaptive,
                    kernel_marker, tiny, start, end, lo, hi, mu, radius, shrink, cut, depth,
                    scan_below, stack, dims, r2buf, c)
                out[i] = value
                scanned[i] = count


kde_pruned_serial, kde_pruned = serial_and_parallel(_kde_pruned)


def query_order(queries, index):
    """The order in which the queries are handed out: by the leaf their descent reaches, for
    ``SORT_QUERIES_FROM`` queries and more; the caller's order below."""
    m = queries.shape[0]
    if m < SORT_QUERIES_FROM or index.depth == 0:
        return np.arange(m, dtype=np.int64)
    q64 = np.ascontiguousarray(queries, dtype=np.float64)
    order, _, _, _ = query_groups(q64, index.lo, index.hi, index.depth, GROUP_MAX)
    return order


def kde_logsum_pruned(queries, index, kernel, *, serial=None, return_scanned=False):
    """log Σ_j w_j k(‖q_i − x_j‖ s_j) of a compact ``kernel`` for whitened ``queries`` (m, d) in the
    index's dtype, over the :class:`~._tree_index.TreeIndex` ``index``; float64 (m,).

    Equals ``_kde_cpu.kde_logsum`` over the same state to rounding. ``serial`` None: one thread
    below ``SERIAL_BELOW`` queries. ``return_scanned``: also the points each query scanned."""
    queries = np.ascontiguousarray(queries)
    if queries.dtype != index.train_t.dtype:
        raise TypeError(f"queries must be {index.train_t.dtype}; got {queries.dtype}")
    d, n = index.train_t.shape
    m = queries.shape[0]
    out = np.empty(m, dtype=np.float64)
    scanned = np.zeros(m, dtype=np.int64)
    if m:
        if serial is None:
            serial = m < SERIAL_BELOW
        dims = (0,) * d if d <= MAX_UNROLLED_D else ()
        driver = kde_pruned_serial if serial else kde_pruned
        driver(queries, query_order(queries, index), index.train_t, index.weights,
               index.log_weights, index.shift, index.inv_scale2, index.adaptive,
               make_kernel_marker(kernel), index.tiny, index.start, index.end, index.lo, index.hi,
               index.mu, index.radius, ball_shrink(d), index.cut, index.depth,
               max(min(SCAN_NODES_BELOW * index.leaf_max, TILE), index.leaf_max), dims,
               CONSTANTS[np.dtype(queries.dtype)],
               out, scanned, 1 if serial else numba.get_num_threads())
    return (out, scanned) if return_scanned else out
