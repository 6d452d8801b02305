"""Numba engine for exact kernel sums under the non-euclidean metrics of scikit-learn's trees.

The op ``kde_logsum_metric`` computes, for every query q_i (rows of ``queries``, raw
coordinates: nothing is whitened),

    log Σ_j w_j · k(D(q_i, x_j) · s_j / h)

with D one of :data:`METRICS` (scikit-learn's ``DistanceMetric`` formulas, the same parameters),
``k`` the unit-scale kernel profile of ``_kde_cpu`` (``_profile``/``_log_profile``), w_j > 0 the
weights, h the bandwidth and s_j optional per-point inverse scales (adaptive bandwidths).
Normalising constants are the caller's job. The euclidean metric is not here: it runs on the
whitened, unrolled engine of ``_kde_cpu`` (the fast path).

Design, as ``_kde_cpu`` (DESIGN.md, "Numerics"):

* ``prange`` over blocks of up to ``QUERY_BLOCK`` queries (fewer when there are few queries, so
  that every thread gets about four blocks); each query's sum is done by one thread in a
  fixed order, in tiles of ``TILE`` training points, so results do not depend on the thread
  count. A block's queries take each tile in turn while it is in cache (the training set is read
  once per block, not once per query: manhattan, d = 8, n = 10⁶, 0.43 → 1.48 G pairs/s measured
  2026-12-07 on 2 cores). Memory O(n + m).
* The training set is stored transposed, (d, n); the distances of a tile are built in a buffer one
  feature at a time (a contiguous loop over the tile that vectorises for the Minkowski family),
  then the kernel profile is applied to the buffer with the vectorisable exponential.
* The kernel is a compile-time constant (``kernel_marker``: one compilation per kernel), the metric
  a runtime code: its branch sits outside the loops over the tile, so it costs nothing per pair,
  and the metrics do not multiply the compilations.
* A query whose plain sum is tiny (terms near or below the underflow threshold) is recomputed in
  log space with a running maximum: finite, correct log densities far from the data; compact
  kernels give exactly −inf outside their support.
* Compact kernels under the metrics that grow with every coordinate gap (manhattan, chebyshev,
  minkowski, seuclidean) skip whole tiles: the training points are put in k-d order (recursive
  median splits, so that a tile is a small box) and a tile whose box is at least h / s_min away
  from the query (a lower bound of every distance in it) holds no point of the support. Skipping
  changes no term that is not zero.
* Everything is float64 (distances such as haversine or canberra need it); the caller casts.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._backend._fastexp import FASTMATH
from .._backend._numba_drivers import serial_and_parallel
from ._kde_cpu import (CONSTANTS, _log_profile, _prepare_weights, _profile, lse_push, make_kernel_marker,
                       query_block)
from ._kernels import COMPACT_KERNELS, EXPONENTIAL, GAUSSIAN

# The metric codes; aliases are resolved by ``_kde.py`` before a code is looked up.
METRIC_CODES = {
    "manhattan": 1,
    "chebyshev": 2,
    "minkowski": 3,  # general p > 0, optional non-negative feature weights w
    "seuclidean": 4,
    "mahalanobis": 5,
    "haversine": 6,
    "hamming": 7,
    "canberra": 8,
    "braycurtis": 9,
    "jaccard": 10,
    "dice": 11,
    "rogerstanimoto": 12,  # = sokalmichener
    "russellrao": 13,
    "sokalsneath": 14,
}
METRICS = tuple(METRIC_CODES)

TILE = 256
QUERY_BLOCK = 32
_TINY = 1e-280  # a plain sum below this fraction of Σw (max weight 1) is recomputed in log space


@njit(inline="always", fastmath=FASTMATH)
def _tile_distances(metric, q, train_t, j0, nt, p, vec, mat, buf, buf2):
    """D(q, x_j) for j = j0 … j0 + nt − 1 into ``buf[:nt]`` (``buf2`` is scratch).

    ``p``: the Minkowski order; ``vec``: Minkowski feature weights (empty: none), seuclidean's V,
    or haversine's cos(latitude) of every training point; ``mat``: Mahalanobis' VI."""
    d = train_t.shape[0]
    u0 = np.uint64(j0)
    un = np.uint64(nt)
    for jj in range(un):
        buf[jj] = 0.0
    if metric == 1:  # manhattan
        for k in range(d):
            qk = q[k]
            for jj in range(un):
                buf[jj] += abs(train_t[k, u0 + jj] - qk)
    elif metric == 2:  # chebyshev
        for k in range(d):
            qk = q[k]
            for jj in range(un):
                a = abs(train_t[k, u0 + jj] - qk)
                buf[jj] = a if a > buf[jj] else buf[jj]
    elif metric == 3:  # minkowski
        inv_p = 1.0 / p
        ip = int(p)
        integer = ip == p and 2 <= ip <= 8  # |a|^p by multiplications, not a pow call per term
        for k in range(d):
            qk = q[k]
            wk = vec[k] if vec.shape[0] > 0 else 1.0
            if integer:
                for jj in range(un):
                    a = abs(train_t[k, u0 + jj] - qk)
                    t = a
                    for _ in range(ip - 1):
                        t *= a
                    buf[jj] += wk * t
            else:
                for jj in range(un):
                    buf[jj] += wk * abs(train_t[k, u0 + jj] - qk) ** p
        for jj in range(un):
            buf[jj] = buf[jj] ** inv_p
    elif metric == 4:  # seuclidean
        for k in range(d):
            qk = q[k]
            vk = vec[k]
            for jj in range(un):
                a = train_t[k, u0 + jj] - qk
                buf[jj] += a * a / vk
        for jj in range(un):
            buf[jj] = math.sqrt(buf[jj])
    elif metric == 5:  # mahalanobis: Σ_a (x − y)_a Σ_b VI_ab (x − y)_b
        for a in range(d):
            qa = q[a]
            for jj in range(un):
                buf2[jj] = 0.0
            for b in range(d):
                qb = q[b]
                m_ab = mat[a, b]
                for jj in range(un):
                    buf2[jj] += m_ab * (qb - train_t[b, u0 + jj])
            for jj in range(un):
                buf[jj] += buf2[jj] * (qa - train_t[a, u0 + jj])
        for jj in range(un):
            r = buf[jj]
            # NaN: the products overflowed (inf − inf), the distance is beyond float64: inf.
            buf[jj] = math.sqrt(r) if r > 0.0 else (math.inf if r != r else 0.0)
    elif metric == 6:  # haversine on (latitude, longitude) in radians
        cos_q = math.cos(q[0])
        for jj in range(un):
            s_lat = math.sin(0.5 * (q[0] - train_t[0, u0 + jj]))
            s_lon = math.sin(0.5 * (q[1] - train_t[1, u0 + jj]))
            r = s_lat * s_lat + cos_q * vec[u0 + jj] * s_lon * s_lon
            r = r if r < 1.0 else 1.0  # rounding must not take asin outside its domain
            buf[jj] = 2.0 * math.asin(math.sqrt(r))
    elif metric == 7:  # hamming: the fraction of unequal coordinates
        for k in range(d):
            qk = q[k]
            for jj in range(un):
                buf[jj] += 1.0 if train_t[k, u0 + jj] != qk else 0.0
        for jj in range(un):
            buf[jj] = buf[jj] / d
    elif metric == 8:  # canberra
        for k in range(d):
            qk = q[k]
            for jj in range(un):
                x = train_t[k, u0 + jj]
                den = abs(qk) + abs(x)
                if den == math.inf:  # values near ±1.8e308: the same ratio from the halves
                    den = abs(0.5 * qk) + abs(0.5 * x)
                    buf[jj] += abs(0.5 * qk - 0.5 * x) / den
                else:
                    buf[jj] += abs(qk - x) / den if den > 0.0 else 0.0
    elif metric == 9:  # braycurtis
        for jj in range(un):
            buf2[jj] = 0.0
        for k in range(d):
            qk = q[k]
            for jj in range(un):
                x = train_t[k, u0 + jj]
                buf[jj] += abs(qk - x)
                buf2[jj] += abs(qk) + abs(x)
        for jj in range(un):
            if buf2[jj] == math.inf:  # the sums overflowed: recompute them scaled by 2^-64 (exact)
                num = 0.0
                den = 0.0
                for k in range(d):
                    a = q[k] * 5.421010862427522e-20
                    x = train_t[k, u0 + jj] * 5.421010862427522e-20
                    num += abs(a - x)
                    den += abs(a) + abs(x)
                buf[jj] = num / den
            else:
                buf[jj] = buf[jj] / buf2[jj] if buf2[jj] > 0.0 else 0.0
    else:  # boolean metrics: nonzero is True. buf counts N_TF + N_FT, buf2 N_TT (or N_TT + N_neq)
        for jj in range(un):
            buf2[jj] = 0.0
        for k in range(d):
            tq = q[k] != 0.0
            for jj in range(un):
                tx = train_t[k, u0 + jj] != 0.0
                buf[jj] += 1.0 if tq != tx else 0.0
                buf2[jj] += 1.0 if (tq and tx) else 0.0
        for jj in range(un):
            neq = buf[jj]
            tt = buf2[jj]
            if metric == 10:  # jaccard: N_neq / (N_TT + N_neq); two all-zero vectors: 0
                den = tt + neq
            elif metric == 11:  # dice: N_neq / (2 N_TT + N_neq)
                den = 2.0 * tt + neq
            elif metric == 12:  # rogerstanimoto = sokalmichener: 2 N_neq / (N + N_neq)
                neq = 2.0 * neq
                den = d + buf[jj]
            elif metric == 13:  # russellrao: (N − N_TT) / N
                neq = d - tt
                den = float(d)
            else:  # sokalsneath: N_neq / (N_TT / 2 + N_neq)
                den = 0.5 * tt + neq
            buf[jj] = neq / den if den > 0.0 else 0.0


# Metrics whose distance is a monotone function of the coordinate gaps |q_k − x_k|, so that the
# gaps to a box bound every distance in it from below.
PRUNABLE_METRICS = ("manhattan", "chebyshev", "minkowski", "seuclidean", "haversine")
# A tile is skipped when its lower bound, in units of the bandwidth, is at least 1 + this margin:
# rounding can then not bring a pair of the tile inside the support.
_PRUNE_MARGIN = 1e-12


@njit(inline="always", fastmath=FASTMATH)
def _box_lower_bound(metric, q, lo, hi, t, p, vec):
    """A lower bound of D(q, x) over the box lo[t] ≤ x ≤ hi[t] (metrics of PRUNABLE_METRICS).

    Haversine: the latitude gap g (the great-circle angle is at least |Δlatitude|, as
    sin²(Δφ/2) ≤ the haversine sum), for g ≤ π; 0 beyond (latitudes outside [−π/2, π/2])."""
    if metric == 6:
        g = lo[t, 0] - q[0]
        g2 = q[0] - hi[t, 0]
        g = g if g > g2 else g2
        return g if 0.0 < g <= math.pi else 0.0
    s = 0.0
    for k in range(q.shape[0]):
        g = lo[t, k] - q[k]
        g2 = q[k] - hi[t, k]
        g = g if g > g2 else g2
        g = g if g > 0.0 else 0.0
        if metric == 1:
            s += g
        elif metric == 2:
            s = s if s > g else g
        elif metric == 3:
            s += (vec[k] if vec.shape[0] > 0 else 1.0) * g**p
        else:
            s += g * g / vec[k]
    if metric == 3:
        s = s ** (1.0 / p)
    elif metric == 4:
        s = math.sqrt(s)
    return s


@njit(inline="always")
def _slow_logsum(q, train_t, log_weights, inv_scale, adaptive, code, metric, inv_h, p, vec, mat,
                 buf, buf2):
    """log Σ_j exp(log w_j + log k(t_j)) with a running maximum (underflow-proof, float64)."""
    n = train_t.shape[1]
    best = -math.inf
    total = 0.0
    for j0 in range(0, n, TILE):
        nt = min(n, j0 + TILE) - j0
        _tile_distances(metric, q, train_t, j0, nt, p, vec, mat, buf, buf2)
        for jj in range(nt):
            t = buf[jj] * inv_h
            if adaptive:
                t *= inv_scale[j0 + jj]
            best, total = lse_push(best, total, log_weights[j0 + jj] + _log_profile(code, t * t))
    if best == -math.inf:
        return -math.inf
    return best + math.log(total)


@njit(fastmath=FASTMATH, cache=True)
def _block_logsum(queries, i0, i1, train_t, weights, log_weights, log_weight_shift, inv_scale, adaptive,
                  kernel_marker, metric, inv_h, p, vec, mat, tiny, buf, buf2, c, prune, lo, hi, smin, out):
    """out[i] for queries i0..i1, the tiles in the outer loop (each tile is read from memory once
    per block of queries, not once per query, as in ``_kde_cpu``); every query sums its tiles in
    order, so the result does not depend on the block."""
    code = len(kernel_marker) - 1
    n = train_t.shape[1]
    totals = np.zeros(i1 - i0)
    for j0 in range(0, n, TILE):
        nt = min(n, j0 + TILE) - j0
        un = np.uint64(nt)
        u0 = np.uint64(j0)
        for i in range(i0, i1):
            q = queries[i]
            if prune:
                t = j0 // TILE
                if _box_lower_bound(metric, q, lo, hi, t, p, vec) * inv_h * smin[t] >= 1.0 + _PRUNE_MARGIN:
                    continue
            _tile_distances(metric, q, train_t, j0, nt, p, vec, mat, buf, buf2)
            s = 0.0
            if adaptive:
                for jj in range(un):
                    t = buf[jj] * inv_h * inv_scale[u0 + jj]
                    s += weights[u0 + jj] * _profile(code, t * t, c)
            else:
                for jj in range(un):
                    t = buf[jj] * inv_h
                    s += weights[u0 + jj] * _profile(code, t * t, c)
            totals[i - i0] += s
    for i in range(i0, i1):
        total = totals[i - i0]
        if total > tiny:
            out[i] = math.log(total) + log_weight_shift
        elif total == 0.0 and code != GAUSSIAN and code != EXPONENTIAL:
            out[i] = -math.inf  # compact kernel, outside the support of every training point
        else:
            out[i] = _slow_logsum(queries[i], train_t, log_weights, inv_scale, adaptive, code, metric, inv_h,
                                  p, vec, mat, buf, buf2)


def _kde_logsum_metric(queries, train_t, weights, log_weights, log_weight_shift, inv_scale,
                       adaptive, kernel_marker, metric, inv_h, p, vec, mat, tiny, out, c,
                       prune, lo, hi, smin, block):
    m = queries.shape[0]
    for b in prange((m + block - 1) // block):
        buf = np.empty(TILE)
        buf2 = np.empty(TILE)
        _block_logsum(queries, b * block, min(m, (b + 1) * block), train_t, weights, log_weights,
                      log_weight_shift, inv_scale, adaptive, kernel_marker, metric, inv_h, p, vec, mat, tiny,
                      buf, buf2, c, prune, lo, hi, smin, out)


# As ``_kde_cpu``: below about a million pairs, waking the thread team costs more than the work.
SERIAL_BELOW_PAIRS = 1 << 20
kde_logsum_metric_serial, kde_logsum_metric_parallel = serial_and_parallel(_kde_logsum_metric)


def kde_logsum_metric(queries, train_t, log_weights, kernel, metric, bandwidth, inv_scales=None, *,
                      p=2.0, vec=None, mat=None):
    """log Σ_j w_j k(D(q_i, x_j) s_j / h) for raw ``queries`` (m, d) and ``train_t`` (d, n).

    ``metric`` is a key of :data:`METRIC_CODES` (aliases resolved); ``p``, ``vec`` and ``mat`` its
    parameters as documented in ``_tile_distances`` (for haversine ``vec`` is ignored: cos of the
    training latitudes is computed here). ``log_weights`` (n,) are log w_j (any scale; None: equal);
    ``inv_scales`` (n,) optional per-point inverse bandwidth factors. Returns float64 (m,).
    """
    queries = np.ascontiguousarray(queries, dtype=np.float64)
    train_t = np.ascontiguousarray(train_t, dtype=np.float64)
    d, n = train_t.shape
    if queries.ndim != 2 or queries.shape[1] != d:
        raise ValueError(f"queries must have shape (m, {d}); got {queries.shape}")
    if n == 0:
        raise ValueError("the training set is empty")
    code = METRIC_CODES[metric]
    mat = np.zeros((0, 0)) if mat is None else np.ascontiguousarray(mat, dtype=np.float64)
    adaptive = inv_scales is not None
    prune = kernel in COMPACT_KERNELS and metric in PRUNABLE_METRICS and n > TILE
    if prune:  # k-d order: tiles become small boxes (the sums are the same up to rounding)
        order = _kd_order(train_t)
        train_t = np.ascontiguousarray(train_t[:, order])
        log_weights = None if log_weights is None else np.asarray(log_weights, dtype=np.float64)[order]
        inv_scales = None if inv_scales is None else np.asarray(inv_scales, dtype=np.float64)[order]
    if metric == "haversine":  # cos of the training latitudes, in the (possibly k-d) order
        vec = np.cos(train_t[0])
    vec = np.zeros(0) if vec is None else np.ascontiguousarray(vec, dtype=np.float64)
    weights, log_w, shift = _prepare_weights(log_weights, n, np.float64)
    inv_scale = (np.ascontiguousarray(inv_scales, dtype=np.float64) if adaptive else np.ones(1))
    if prune:
        starts = np.arange(0, n, TILE)
        lo = np.ascontiguousarray(np.minimum.reduceat(train_t, starts, axis=1).T)
        hi = np.ascontiguousarray(np.maximum.reduceat(train_t, starts, axis=1).T)
        smin = np.minimum.reduceat(inv_scale, starts) if adaptive else np.ones(len(starts))
    else:
        lo = hi = np.zeros((0, d))
        smin = np.ones(0)
    tiny = _TINY * max(float(np.sum(weights)), 1.0)
    out = np.empty(queries.shape[0], dtype=np.float64)
    if queries.shape[0] == 0:
        return out
    driver = (kde_logsum_metric_serial if queries.shape[0] * n < SERIAL_BELOW_PAIRS
              else kde_logsum_metric_parallel)
    block = query_block(queries.shape[0], QUERY_BLOCK)
    driver(queries, train_t, weights, log_w, shift, inv_scale, adaptive, make_kernel_marker(kernel),
           code, 1.0 / float(bandwidth), float(p), vec, mat, tiny, out, CONSTANTS[np.dtype(np.float64)],
           prune, lo, hi, smin, block)
    return out


def _kd_order(train_t):
    """A permutation of the columns of ``train_t`` (d, n) in k-d order: recursive splits at the
    median of the widest coordinate, down to blocks of at most ``TILE`` points, each block a
    contiguous run (so that the tiles of the kernel are small boxes)."""
    d, n = train_t.shape
    order = np.arange(n)
    stack = [(0, n)]
    while stack:
        a, b = stack.pop()
        if b - a <= TILE:
            continue
        idx = order[a:b]
        pts = train_t[:, idx]
        k = int(np.argmax(np.ptp(pts, axis=1)))
        # Split at a multiple of TILE so that no tile straddles two boxes.
        half = a + max(TILE, ((b - a) // 2) // TILE * TILE)
        part = np.argpartition(pts[k], half - a - 1)
        order[a:b] = idx[part]
        stack.append((a, half))
        stack.append((half, b))
    return order
