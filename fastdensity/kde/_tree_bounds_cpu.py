"""Gaussian and exponential kernel sums within a guaranteed tolerance: a k-d tree walk with
node bounds and Gray & Moore's allocation of the error budget (Numba).

For a query q and a node N of the ``_tree_index`` tree (total weight W, float64 data), every
point's kernel argument t_j = ‖q − x_j‖² s_j² lies in [t_min, t_max] (the nearest and farthest
distance² of the node's box, or of its ball around μ where tighter, times the node's smallest and
largest s²), and the s²-weighted mean of the t_j
is t̄ = A ‖q − μ‖² + V (the node's moments). The kernel as a function of t, k(t) = exp(−t / 2)
(gaussian) or exp(−√t) (exponential), is decreasing and convex, so

    W k(t̄) ≤ Σ_j w_j k(t_j) ≤ W [k(t_min) + (k(t_max) − k(t_min)) (t̄ − t_min) / (t_max − t_min)]

(Jensen below, the chord above): second-order bounds in the node's size, much tighter than
W [k(t_max), k(t_min)]. Each bound is made safe for rounding: t_min and t_max widened by the
relative rounding of the box distances, t̄ by the rounding bounds of the moments
(``_tree_index._moment_rounding``), every exponential by 4 units of roundoff (libm's exp is within
one ulp); an exponential that underflows is 0 as a lower bound and 1e-300 (above e^−700) as an
upper one.

The walk is depth first, nearer child first. A node is replaced by the middle of its bounds,
with error at most half their width e_N, or (gaussian, d ≤ 2) by its Hermite expansion of the
lowest order whose bound e_N fits (``_tree_hermite``), when

    e_N ≤ ρ_own · L_N + (ε − E) · W_N / W_rest,   ε = ρ_w · S_lo + atol_S,   ρ_own + ρ_w = rtol,

with L_N the node's lower bound, E the part of the errors so far not covered by their own
ρ_own · L terms, W_rest the weight not yet accounted for and S_lo a lower bound on the sum (the
exact leaves so far, rounded down, and the lower bounds of the replaced nodes). S_lo only grows,
so E ≤ ε ≤ ρ_w · S + atol_S at the end and the errors add up to at most ρ_own Σ L_N + E ≤
rtol · S + atol_S, whatever the order: the sum is within the tolerance. The own share
(``REL_FRAC`` of rtol with expansions, else 0) lets a node near the query, which carries much of
the sum, be replaced at a relative accuracy of about rtol instead of rtol times its share of the
weight. A leaf that cannot be replaced (or a node of at most ``SCAN_NODES_BELOW`` leaves' worth
of points) is summed exactly, by the exact engine's own tile sum in float64.

The guarantee covers the approximation; the float64 rounding of the exact leaf sums and of the
final additions (relative, a few hundred units of roundoff at most) comes on top, as it does in
the exact engine. A sum at or below the exact engine's ``tiny`` threshold is recomputed in log
space over every point (finite log densities far from the data, as the exact engine gives).

Measured (bench/compare_kde_tree.py, 2 cores shared with other jobs, Scott's bandwidth, standard
normal data, rtol = 1e-6, the exact engine timed on 1000 queries and scaled by m; results in
bench/results/kde-tree-cpu-2core-2026-12-07-hermite.txt): d = 2, n = m = 10⁶: 9.4 to 10.9 s in
all (fit, expansions and scoring; before the expansions 204 s) against the exact engine's ~350 s,
the bound held on 1000 sampled queries (largest error 0.42 rtol); per query about 8 µs at
n = 10⁵ and 10⁶, with about 80 nodes visited, 25 expansions and 100 to 400 points scanned at
n = 10⁵ to 10⁷ (nearly flat: the near field is a fixed number of bandwidth-sized nodes). With
n = m at every size (bench/results/kde-tree-cpu-2core-2026-12-07-growth-nm.txt, no other jobs):
0.71 s, 7.9 s and 104 s in all at n = 10⁵, 10⁶, 10⁷, growing as n^1.05 and n^1.12 (n log n:
n^1.08 and n^1.07); per query 6.0, 6.7 and 8.8 µs. d = 8, n = 10⁶: 0.3x the exact engine since
that reads the training set once per block of queries (it was about 1.0x before; no expansions
there; the node bounds alone still scan ~80 % of the points at this tolerance; "auto" keeps
"exact" there).
"""

from __future__ import annotations

import math
import weakref

import numba
import numpy as np
from numba import njit, prange

from .._backend._fastexp import FASTMATH
from .._backend._numba_drivers import serial_and_parallel
from ..knn._kdtree_query import _box_lb
from ..knn._sched import next_task
from ._kde_cpu import (CONSTANTS, MAX_UNROLLED_D, TILE, _logsum_slow, _tile_sum_buffered,
                       _tile_sum_unrolled, make_kernel_marker)
from ._kernels import GAUSSIAN
from ._pruned_cpu import QUERY_TASK, SERIAL_BELOW, query_order
from ._tree_hermite import build_hermite, hermite_sum
from ._tree_index import moment_gamma

_U = 2.0**-53  # float64 unit roundoff
_UNDERFLOW_ARG = 700.0  # exp(−x) for x beyond this: 0 below, 1e-300 (> e^−700) above
# A node that cannot be replaced and holds at most this many leaves' worth of points (and at most
# TILE) is summed whole: its points are contiguous, and bounding its descendants costs more (three
# exp, two box distances and a moment: about 120 ns a node, measured at d = 2) than scanning them
# (about 1 ns a point).
SCAN_NODES_BELOW = 8
# With Hermite expansions, this share of rtol is charged to each replaced node's own lower bound
# (a node near the query needs a relative accuracy of rtol, not rtol × its share of the weight);
# the rest is spread by weight over the running lower bound of the sum.
# Without them the whole rtol goes by weight (measured at d = 8: the split did not help there).
REL_FRAC = 0.5


@njit(inline="always")
def _box_ub(q, lo, hi, node):
    """Squared distance from q to the farthest corner of the node's box."""
    s = 0.0
    for c in range(q.shape[0]):
        g = max(abs(q[c] - lo[node, c]), abs(q[c] - hi[node, c]))
        s += g * g
    return s


@njit(inline="always")
def _arg(code, t):
    """x with k = exp(−x): t / 2 (gaussian) or √t (exponential)."""
    return 0.5 * t if code == GAUSSIAN else math.sqrt(t)


@njit(inline="always")
def _k_above(code, t):
    """An upper bound of k at every argument ≥ t."""
    x = _arg(code, t)
    if x > _UNDERFLOW_ARG:
        return 1e-300
    return math.exp(-x) * (1.0 + 4.0 * _U)


@njit(inline="always")
def _k_below(code, t):
    """A lower bound of k at every argument ≤ t."""
    return math.exp(-_arg(code, t)) * (1.0 - 4.0 * _U)


@njit(fastmath=FASTMATH, cache=True)
def _leaf_sum(q, train_t, weights, inv_scale2, adaptive, kernel_marker, s, e, dims, r2buf, c):
    """Σ_j w_j k(t_j) over points s..e: the exact engine's tile sum (``_kde_cpu``, float64, the
    same terms), compiled on its own with the vectorising flags (this module's walk is not)."""
    code = len(kernel_marker) - 1
    if len(dims) > 0:
        return _tile_sum_unrolled(q, train_t, weights, inv_scale2, adaptive, code, s, e, dims, c)
    return _tile_sum_buffered(q, train_t, weights, inv_scale2, adaptive, code, s, e, r2buf, c)


@njit(inline="always")
def _node_bounds(q, node, code, lo, hi, wsum, s2min, s2max, mu, radius, a_mean, var, t_err_scale,
                 t_err_off, gamma, box_margin):
    """(lower, upper, t_max) bounds of the node's Σ w_j k(t_j) at q, safe for rounding."""
    W = wsum[node]
    lb2 = _box_lb(q, lo, hi, node)
    ub2 = _box_ub(q, lo, hi, node)
    dist2 = 0.0
    for c in range(q.shape[0]):
        a = q[c] - mu[node, c]
        dist2 += a * a
    # the ball around μ: ‖q − μ‖ ∓ R bound every ‖q − x_j‖ (rounded outwards)
    dq = math.sqrt(dist2)
    g = dq * (1.0 - box_margin) - radius[node]
    if g > 0.0 and g * g > lb2:
        lb2 = g * g
    g = dq * (1.0 + box_margin) + radius[node]
    if g * g < ub2:
        ub2 = g * g
    t_min = lb2 * s2min[node] * (1.0 - box_margin)
    t_max = ub2 * s2max[node] * (1.0 + box_margin)
    t_bar = a_mean[node] * dist2 + var[node]
    dt = t_err_scale[node] * (math.sqrt(dist2) + t_err_off[node]) + gamma * t_bar
    t_hi = min(t_bar + dt, t_max)
    t_lo = max(t_bar - dt, t_min)
    lower = W * _k_below(code, t_hi)
    k_a = _k_above(code, t_min)
    k_b = _k_above(code, t_max)
    width = t_max - t_min
    if width > 0.0 and k_a > k_b:
        frac = min(max((t_lo - t_min) / width, 0.0), 1.0) * (1.0 - 8.0 * _U)
        upper = W * (k_a - (k_a - k_b) * frac) * (1.0 + 4.0 * _U)
    else:
        upper = W * k_a * (1.0 + 4.0 * _U)
    return lower, max(upper, lower), t_max


@njit(cache=True)
def _query_bounded(q, train_t, weights, log_weights, shift, inv_scale2, adaptive, kernel_marker,
                   tiny, start, end, lo, hi, wsum, s2min, s2max, mu, radius, a_mean, var, t_err_scale,
                   t_err_off, depth, rtol, atol_s, gamma, box_margin, scan_below, stack, dims, r2buf,
                   consts, counts, rel_frac, h_slot, h_order, h_center, h_halfw, h_count, h_moments,
                   h_tail, hv, gbuf, rbuf, tbuf):
    """log Σ_j w_j k(t_j) (plus ``shift``) within atol_s + rtol · Σ; ``counts`` gets (nodes
    visited, points scanned)."""
    code = len(kernel_marker) - 1
    for c in range(q.shape[0]):
        if not math.isfinite(q[c]):  # infinitely far from the data (the exact engine's −inf)
            counts[:] = 0
            return -math.inf
    first_leaf = (1 << depth) - 1
    w_total = wsum[0]
    use_h = h_slot.shape[0] > 1
    rtol_rel = rtol * rel_frac  # the share of rtol charged to each node's own lower bound
    rtol_w = rtol - rtol_rel  # the share spread by weight over the running lower bound
    est = 0.0
    spent = 0.0
    s_lo = 0.0
    n_lo = 0  # additions into s_lo (its relative rounding is at most n_lo u)
    w_done = 0.0
    visited = 0
    scanned = 0
    h_tried = 0
    h_used = 0
    stack[0] = 0
    sp = 1
    while sp > 0:
        sp -= 1
        node = stack[sp]
        W = wsum[node]
        if W == 0.0:
            continue
        visited += 1
        lower, upper, t_max = _node_bounds(q, node, code, lo, hi, wsum, s2min, s2max, mu, radius,
                                           a_mean, var, t_err_scale, t_err_off, gamma, box_margin)
        err = 0.5 * (upper - lower) * (1.0 + 4.0 * _U)
        eps = rtol_w * s_lo * (1.0 - 2.0 * (n_lo + 2) * _U) + atol_s
        rest = w_total - w_done
        share = W / rest if rest > W else 1.0
        own = rtol_rel * lower * (1.0 - 4.0 * _U)
        room = max(eps - spent, 0.0) * share * (1.0 - 4.0 * _U)
        if err <= own + room:
            est += 0.5 * (lower + upper)
            spent = (spent + max(err - own, 0.0)) * (1.0 + 2.0 * _U)  # rounded up
            s_lo += lower
            n_lo += 1
            w_done += W
            continue
        k = h_slot[node] if use_h else -1
        if k >= 0:
            h_tried += 1
            val, herr = hermite_sum(q, k, W, own + room, h_order, h_center, h_halfw, h_count,
                                    h_moments, h_tail, hv, gbuf, rbuf, tbuf)
            if herr <= own + room:
                h_used += 1
                val = min(max(val, lower), upper)
                est += val
                spent = (spent + max(herr - own, 0.0)) * (1.0 + 2.0 * _U)
                s_lo += max(val - herr * (1.0 + 4.0 * _U), lower)
                n_lo += 2
                w_done += W
                continue
        if node >= first_leaf or end[node] - start[node] <= scan_below:
            s = start[node]
            e = end[node]
            scanned += e - s
            total = _leaf_sum(q, train_t, weights, inv_scale2, adaptive, kernel_marker, s, e, dims,
                              r2buf, consts)
            est += total
            # The leaf's rounding: r² within (d + 3) u relative, so exp(−x) within x (d + 3) u + 2 u,
            # and e − s additions; a term that underflowed lost less than its weight × 1e-307.
            x_max = _arg(code, t_max)
            g = (x_max * (q.shape[0] + 3) + (e - s) + 8) * _U
            s_lo += max(total * (1.0 - g) - (e - s) * 1e-307, 0.0)
            n_lo += 1
            w_done += W
        else:
            left = 2 * node + 1
            right = left + 1
            if _box_lb(q, lo, hi, left) <= _box_lb(q, lo, hi, right):
                stack[sp] = right
                stack[sp + 1] = left
            else:
                stack[sp] = left
                stack[sp + 1] = right
            sp += 2
    counts[0] = visited
    counts[1] = scanned
    counts[2] = h_tried
    counts[3] = h_used
    if est > tiny:
        return math.log(est) + shift
    return _logsum_slow(q, train_t, log_weights, inv_scale2, adaptive, code, -1)


def _kde_bounded(queries, order, train_t, weights, log_weights, shift, inv_scale2, adaptive,
                 kernel_marker, tiny, start, end, lo, hi, wsum, s2min, s2max, mu, radius, a_mean, var,
                 t_err_scale, t_err_off, depth, rtol, atol_s, gamma, box_margin, scan_below, dims,
                 c, out, counts, n_workers, rel_frac, h_slot, h_order, h_center, h_halfw, h_count,
                 h_moments, h_tail):
    m = queries.shape[0]
    n_tasks = (m + QUERY_TASK - 1) // QUERY_TASK
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(n_workers):  # one iteration per thread; tasks handed out dynamically
        stack = np.empty(2 * depth + 8, dtype=np.int64)
        r2buf = np.empty(scan_below, dtype=np.float64)
        d = queries.shape[1]
        hv = np.empty((d, max(h_order, 1)))
        gbuf = np.empty(d)
        rbuf = np.empty(d)
        tbuf = np.empty(d)
        while True:
            t = next_task(counter)
            if t >= n_tasks:
                break
            for ii in range(t * QUERY_TASK, min(m, (t + 1) * QUERY_TASK)):
                i = order[ii]
                out[i] = _query_bounded(
                    queries[i], train_t, weights, log_weights, shift, inv_scale2, adaptive,
                    kernel_marker, tiny, start, end, lo, hi, wsum, s2min, s2max, mu, radius, a_mean, var,
                    t_err_scale, t_err_off, depth, rtol, atol_s, gamma, box_margin, scan_below,
                    stack, dims, r2buf, c, counts[i], rel_frac, h_slot, h_order, h_center, h_halfw,
                    h_count, h_moments, h_tail, hv, gbuf, rbuf, tbuf)


kde_bounded_serial, kde_bounded = serial_and_parallel(_kde_bounded)


_HERMITE_CACHE = {}  # id(index.train_t) → HermiteIndex or None, dropped with the array


def hermite_index(index):
    """The Hermite moments of ``index`` (``_tree_hermite.build_hermite``), built on first use and
    kept as long as the index's training array lives."""
    key = id(index.train_t)
    hit = _HERMITE_CACHE.get(key)
    if hit is not None and hit[0]() is index.train_t:
        return hit[1]
    herm = build_hermite(index)
    _HERMITE_CACHE[key] = (weakref.ref(index.train_t), herm)
    weakref.finalize(index.train_t, _HERMITE_CACHE.pop, key, None)
    return herm


def _hermite_args(herm, d):
    if herm is None:
        return (np.full(1, -1, dtype=np.int64), 0, np.zeros((1, d)), np.zeros((1, d)),
                np.zeros(1, dtype=np.int64), np.zeros((1, 1)), np.zeros((1, d, 1)))
    return herm.slot, herm.order, herm.center, herm.halfw, herm.count, herm.moments, herm.tail


def atol_in_sum_units(atol, log_norm, shift):
    """``atol`` on the density as a tolerance on Σ_j (w_j / max w) k: the density is that sum
    times exp(log_norm + shift). Capped at 1e300 (a tolerance that large prunes everything)."""
    if atol <= 0.0:
        return 0.0
    return math.exp(min(math.log(atol) - log_norm - shift, 690.0))


def kde_logsum_bounded(queries, index, kernel, rtol, atol_s, *, serial=None, return_counts=False,
                       hermite=True):
    """log Σ_j w_j k(‖q_i − x_j‖ s_j) for the gaussian or exponential ``kernel`` and whitened
    float64 ``queries`` (m, d) over a float64 :class:`~._tree_index.TreeIndex`, each within
    ``atol_s + rtol ·`` the sum (``atol_s`` in the sum's units, :func:`atol_in_sum_units`); float64
    (m,). ``return_counts``: also (m, 4) nodes visited, points scanned, Hermite expansions tried and
    used per query. ``hermite``:
    use the nodes' Hermite expansions (gaussian, d ≤ 3, no adaptive bandwidths; ``_tree_hermite``)."""
    queries = np.ascontiguousarray(queries, dtype=np.float64)
    if index.train_t.dtype != np.float64:
        raise TypeError(f"the bounded engine runs on a float64 index; got {index.train_t.dtype}")
    d, n = index.train_t.shape
    m = queries.shape[0]
    out = np.empty(m, dtype=np.float64)
    counts = np.zeros((m, 4), dtype=np.int64)
    if m:
        if serial is None:
            serial = m < SERIAL_BELOW
        herm = hermite_index(index) if kernel == "gaussian" and hermite else None
        gamma = moment_gamma(d, index.depth, index.leaf_max)
        box_margin = 2.0 * (d + 5) * _U
        driver = kde_bounded_serial if serial else kde_bounded
        driver(queries, query_order(queries, index), index.train_t, index.weights,
               index.log_weights, index.shift, index.inv_scale2, index.adaptive,
               make_kernel_marker(kernel), index.tiny, index.start, index.end, index.lo, index.hi,
               index.wsum, index.s2min, index.s2max, index.mu, index.radius, index.a_mean, index.var,
               index.t_err_scale, index.t_err_off, index.depth, float(rtol), float(atol_s), gamma,
               box_margin, max(min(SCAN_NODES_BELOW * index.leaf_max, TILE), index.leaf_max),
               (0,) * d if d <= MAX_UNROLLED_D else (), CONSTANTS[np.dtype(np.float64)], out, counts,
               1 if serial else numba.get_num_threads(), REL_FRAC if herm is not None else 0.0,
               *_hermite_args(herm, d))
    return (out, counts) if return_counts else out
