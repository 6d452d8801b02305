"""The Numba kernels of the brute-force kNN; ``_knn_cpu`` holds the design and the host side.

The float32 screen of a block of queries against the training panels (``_block_panels``) or
against gemm blocks (``_block_blas``, above ``MAX_NUMBA_D`` dimensions), the exact evaluation of
the pairs it keeps (``_scan``), the screen's threshold and its rounding-error bound
(``_screen_thr``, ``_margin_coef``), and the thin parallel drivers ``knn_panels`` and
``knn_blas`` that hand the query blocks to the threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._backend._fastexp import FASTMATH
from ._sched import next_task
from ._topk import INT_MAX, exact_sq_dist, topk_push, topk_sort

TILE = 256  # training points per panel (Numba screen), TILE_NARROW up to NARROW_D dimensions
TILE_NARROW = 512
NARROW_D = 16
CHUNK = 32  # scan granularity inside a panel
BLAS_TILE = 512  # training points per gemm block

_U32 = 2.0**-24  # unit roundoff of float32


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

