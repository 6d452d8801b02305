"""The spatial index of the pruned KDE engines: a k-d tree over the whitened training data,
built once per fit and dtype from the CPU engine's state (``_engine_cpu.CPUEngine.state``).

The tree is the k-nearest-neighbour engine's (``knn._kdtree_build``): median splits on the widest
side of each node's box down to leaves of at most ``leaf_size`` points, implicit and balanced
(node i has children 2i + 1 and 2i + 2, the leaves are the last level), each node with the tight
bounding box of its points. The training points are reordered so that a node's points are
contiguous, stored transposed (d, n) in the working dtype as the exact engine stores them: a leaf
is summed by the exact engine's own tile function over the same values.

Per node the index also keeps what the pruning rules need:

* ``cut``: the squared whitened distance at or beyond which every point of the node has a
  computed kernel argument r² s_j² ≥ 1, so that a compact kernel gives exactly 0 for each of
  them in the exact engine (see :func:`support_cut`);
* ``wsum``: Σ_j w_j of the node's (scaled) weights, in float64;
* ``s2min``, ``s2max``: the smallest and largest inverse squared adaptive scale s_j² (1 without
  adaptive bandwidths);
* ``radius``: max_j ‖x_j − μ‖ (rounded up), for ball bounds, which prune far better than the
  boxes in higher dimensions (a box of a k-d tree is split along only a few of them);
* ``mu``, ``var``: the s²-weighted centroid μ = Σ w s² x / Σ w s² and the s²-weighted mean squared
  spread V = Σ w s² ‖x − μ‖² / Σ w, with which Σ w_j s_j² ‖q − x_j‖² = A ‖q − μ‖² + V (A the node's
  Σ w s² / Σ w, times Σ w) holds exactly; the bounded-error engine (``_tree_bounds_cpu``) uses them,
  with ``t_err_scale`` and ``t_err_off`` bounding what the rounding of μ and V changes in that
  identity (see :func:`_moment_rounding`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numba import njit

from ..knn._kdtree_build import _tight_boxes, build_order
from ..knn._kdtree_query import _box_lb
from ._kde_cpu import _TINY, _prepare_weights


class TreeIndex(NamedTuple):
    """The reordered training data and the per-node arrays (see the module docstring)."""

    train_t: np.ndarray  # (d, n) working dtype, tree order
    weights: np.ndarray  # (n,) working dtype, w_j / max w
    log_weights: np.ndarray  # (n,) float64, log w_j (any scale, as in the engine's state)
    shift: float  # log max w: log Σ w k = shift + log Σ (w / max w) k
    inv_scale2: np.ndarray  # (n,) working dtype s_j², or ones(1) without adaptive bandwidths
    adaptive: bool
    tiny: float  # the exact engine's threshold below which a plain sum is redone in log space
    depth: int
    start: np.ndarray  # (nodes,) int64
    end: np.ndarray
    lo: np.ndarray  # (nodes, d) float64 tight box of the stored coordinates
    hi: np.ndarray
    cut: np.ndarray  # (nodes,) float64
    wsum: np.ndarray  # (nodes,) float64
    s2min: np.ndarray  # (nodes,) float64
    s2max: np.ndarray
    mu: np.ndarray  # (nodes, d) float64
    a_mean: np.ndarray  # (nodes,) float64, Σ w s² / Σ w
    var: np.ndarray  # (nodes,) float64, Σ w s² ‖x − μ‖² / Σ w
    t_err_scale: np.ndarray  # (nodes,) float64: 2 A δ, δ the bound on the rounding of μ (below)
    t_err_off: np.ndarray  # (nodes,) float64: (depth + 1) × the box's diagonal
    leaf_max: int  # the most points in a leaf
    radius: np.ndarray  # (nodes,) float64: an upper bound of max_j ‖x_j − μ‖ over the node's points


def support_cut(d: int, dtype) -> float:
    """1 + margin: a node whose float64 box distance² times its smallest s² reaches this value
    holds only points whose kernel argument, as the exact engine computes it in ``dtype``, is ≥ 1.

    The exact engine computes r² = Σ_k (x_k − q_k)² in the working dtype (d rounded differences,
    squares and additions, possibly contracted or reassociated) and then r² s², each step with a
    relative error of at most u (the dtype's unit roundoff): the computed value is at least
    (1 − (d + 3) u) times the true one. The box bound is computed the same way in float64 and is at
    most (1 + (d + 3) u₆₄) times the true distance² to the box, itself at most the true r². So a
    cut of (1 + 4 (d + 4) u) leaves a computed r² s² ≥ 1 for every point behind it, and the
    compact kernels are exactly 0 there (tophat: r² < 1 is false; the others: 1 − r² ≤ 0)."""
    u = float(np.finfo(dtype).eps) / 2
    return 1.0 + 4.0 * (d + 4) * u


@njit(cache=True)
def _node_stats(xt64, w64, s2, adaptive, start, end, depth, n_nodes):
    """wsum, s2min, s2max, mu, a_mean, var of every node: leaves from their points, internal nodes
    from their children (sums of non-negative terms; V by the parallel-axis rule), O(n d)."""
    d = xt64.shape[0]
    wsum = np.zeros(n_nodes)
    a_sum = np.zeros(n_nodes)  # Σ w s²
    s2min = np.full(n_nodes, math.inf)
    s2max = np.zeros(n_nodes)
    mu = np.zeros((n_nodes, d))
    vsum = np.zeros(n_nodes)  # Σ w s² ‖x − μ‖²
    first_leaf = (1 << depth) - 1
    for node in range(first_leaf, n_nodes):
        s = start[node]
        e = end[node]
        for j in range(s, e):
            sj = s2[j] if adaptive else 1.0
            wsum[node] += w64[j]
            a_sum[node] += w64[j] * sj
            s2min[node] = min(s2min[node], sj)
            s2max[node] = max(s2max[node], sj)
            for c in range(d):
                mu[node, c] += w64[j] * sj * xt64[c, j]
        if a_sum[node] > 0.0:
            for c in range(d):
                mu[node, c] /= a_sum[node]
        for j in range(s, e):
            sj = s2[j] if adaptive else 1.0
            r2 = 0.0
            for c in range(d):
                t = xt64[c, j] - mu[node, c]
                r2 += t * t
            vsum[node] += w64[j] * sj * r2
    for node in range(first_leaf - 1, -1, -1):
        left = 2 * node + 1
        right = left + 1
        wsum[node] = wsum[left] + wsum[right]
        a_sum[node] = a_sum[left] + a_sum[right]
        s2min[node] = min(s2min[left], s2min[right])
        s2max[node] = max(s2max[left], s2max[right])
        if a_sum[node] > 0.0:
            for c in range(d):
                mu[node, c] = (a_sum[left] * mu[left, c] + a_sum[right] * mu[right, c]) / a_sum[node]
        v = vsum[left] + vsum[right]
        for child in (left, right):
            r2 = 0.0
            for c in range(d):
                t = mu[child, c] - mu[node, c]
                r2 += t * t
            v += a_sum[child] * r2
        vsum[node] = v
    a_mean = np.zeros(n_nodes)
    var = np.zeros(n_nodes)
    for node in range(n_nodes):
        if s2min[node] == math.inf:  # an empty node (n below the leaf count): prunes always
            s2min[node] = 1.0
            s2max[node] = 1.0
        if wsum[node] > 0.0:
            a_mean[node] = a_sum[node] / wsum[node]
            var[node] = vsum[node] / wsum[node]
    return wsum, s2min, s2max, mu, a_mean, var


@njit(cache=True)
def _radii(xt64, mu, start, end, n_nodes):
    """Per node, max_j ‖x_j − μ‖ over its points, rounded up (float64; (d + 4) u relative covers the
    rounding of the differences, squares, sum and square root). O(n d (depth + 1)), serial."""
    d = xt64.shape[0]
    grow = 1.0 + 2.0 * (d + 4) * 2.0**-53
    radius = np.zeros(n_nodes)
    for node in range(n_nodes):
        best = 0.0
        for j in range(start[node], end[node]):
            r2 = 0.0
            for c in range(d):
                t = xt64[c, j] - mu[node, c]
                r2 += t * t
            best = max(best, r2)
        radius[node] = math.sqrt(best) * grow
    return radius


BALL_FROM_D = 3  # the compact kernels' walk also tries the ball bound from this dimension on


def ball_shrink(d):
    """The factor that rounds a computed ‖q − μ‖ down to below the true one (its rounding is within
    (d + 3) u relative: d differences, squares and additions, and the square root)."""
    return 1.0 - 2.0 * (d + 4) * 2.0**-53


@njit(inline="always")
def node_lb2(q, node, lo, hi, mu, radius, shrink, use_ball):
    """A lower bound of ‖q − x‖² over the node's points: the box's, or the ball's (‖q − μ‖ − R)²
    when ``use_ball`` and that is larger. Within a few units of roundoff (relative) of a true lower
    bound, as the box distance alone is: the callers' margins cover both."""
    s = _box_lb(q, lo, hi, node)
    if use_ball:
        b = 0.0
        for c in range(q.shape[0]):
            a = q[c] - mu[node, c]
            b += a * a
        g = math.sqrt(b) * shrink - radius[node]
        if g > 0.0 and g * g > s:
            s = g * g
    return s


def _moment_rounding(lo, hi, a_mean, wsum, depth, leaf_max):
    """(t_err_scale, t_err_off) per node: with them, the computed A ‖q − μ̃‖² + Ṽ is within
    t_err_scale (‖q − μ̃‖ + t_err_off) + γ (A ‖q − μ̃‖² + Ṽ) of the true s²-weighted mean of
    ‖q − x_j‖² s_j² (γ = ``moment_gamma``).

    μ̃ = μ + δ: a leaf's weighted mean of coordinates is a ratio of two sums of at most leaf_max
    terms, so |δ_c| ≤ (2 leaf_max + 4) u max|x_c|; each level above is a convex combination of its
    children's, adding at most 4 u max|x_c|; hence |δ_c| ≤ (2 leaf_max + 4 depth + 8) u M_c with M_c
    the node box's largest |coordinate|. Expanding Σ w s² ‖q − x‖² around μ̃ gives the exact
    A W ‖q − μ̃‖² + 2 A W (q − μ̃)·δ + Σ w s² ‖x − μ̃‖², and the parallel-axis sums that form Ṽ drop,
    at each of at most depth + 1 levels, a cross term of at most 2 A W D δ (D the box's diagonal,
    a bound on ‖μ̃_child − μ̃‖). The rest is relative rounding of non-negative sums (γ)."""
    u = float(np.finfo(np.float64).eps) / 2
    with np.errstate(invalid="ignore", over="ignore"):
        M = np.maximum(np.abs(lo), np.abs(hi))
        delta = (2 * leaf_max + 4 * depth + 8) * u * np.sqrt(np.sum(M * M, axis=1))
        diag = np.sqrt(np.sum((hi - lo) ** 2, axis=1))
    empty = ~(wsum > 0)
    delta[empty] = 0.0
    diag[empty] = 0.0
    # The factor 2 on both: slack for the rounding of these bounds themselves.
    return 2.0 * (2.0 * a_mean * delta), 2.0 * (depth + 1) * diag


def moment_gamma(d, depth, leaf_max):
    """The relative rounding bound γ of the computed A ‖q − μ̃‖² + Ṽ (sums of non-negative terms:
    at most leaf_max + 2 (depth + 1) + d additions and products per term, each within u; doubled)."""
    u = float(np.finfo(np.float64).eps) / 2
    return 2.0 * (leaf_max + 4 * (depth + 1) + 2 * d + 16) * u


def build_tree_index(train_t, log_w, inv_scales, leaf_size) -> TreeIndex:
    """The index over the engine state's whitened training data ``train_t`` (d, n), its log
    weights and optional inverse adaptive scales (zero-weight rows already dropped)."""
    dtype = train_t.dtype
    d, n = train_t.shape
    weights, log_w, shift = _prepare_weights(log_w, n, dtype)
    xs = np.ascontiguousarray(train_t.T, dtype=np.float64)
    perm, depth = build_order(xs, int(leaf_size), False, numba.get_num_threads())
    xt64 = np.ascontiguousarray(xs[perm].T)
    start, end, lo, hi = _tight_boxes(xt64, depth)
    train_r = np.ascontiguousarray(train_t[:, perm])
    weights_r = np.ascontiguousarray(weights[perm])
    adaptive = inv_scales is not None
    if adaptive:
        # The exact engine's s² in the working dtype (kde_logsum squares in float64, then casts).
        inv_scale2 = np.ascontiguousarray((np.asarray(inv_scales, dtype=np.float64) ** 2).astype(dtype)[perm])
    else:
        inv_scale2 = np.ones(1, dtype=dtype)
    s2_64 = inv_scale2.astype(np.float64)
    wsum, s2min, s2max, mu, a_mean, var = _node_stats(
        xt64, weights_r.astype(np.float64), s2_64, adaptive, start, end, depth, start.shape[0])
    cut = support_cut(d, dtype) / s2min
    tiny = _TINY[np.dtype(dtype)] * max(float(np.sum(weights, dtype=np.float64)), 1.0)
    first_leaf = (1 << int(depth)) - 1
    leaf_max = max(int(np.max(end[first_leaf:] - start[first_leaf:])), 1)
    t_err_scale, t_err_off = _moment_rounding(lo, hi, a_mean, wsum, depth, leaf_max)
    return TreeIndex(train_r, weights_r, np.ascontiguousarray(log_w[perm]), shift, inv_scale2,
                     adaptive, tiny, int(depth), start, end, lo, hi, cut, wsum, s2min, s2max, mu,
                     a_mean, var, t_err_scale, t_err_off, leaf_max,
                     _radii(xt64, mu, start, end, start.shape[0]))
