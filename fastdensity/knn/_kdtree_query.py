"""Exact k-nearest-neighbour search in the k-d tree of ``_kdtree_cpu`` (Numba).

``query_groups`` groups the queries by the leaf their nearer-box descent reaches, ``kdtree_query``
hands tasks of ``GROUPS_PER_TASK`` groups to the threads, and ``_query_group`` searches one group:
a top-k filled from the smallest subtree that holds k points, then the group's candidate leaves
(d ≤ ``GROUP_MAX_D``) or one depth-first search per query. Leaf scans compute distances with the
operations of ``exact_sq_dist``, so the results equal brute force's (see ``_kdtree_cpu``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._sched import next_task
from ._topk import INT_MAX, topk_push, topk_sort

GROUP_MAX = 32  # queries searched together (they share a leaf)
GROUPS_PER_TASK = 8  # groups per task handed to a thread
GROUP_MAX_D = 3  # above this, each query of a group runs its own depth-first search
RANK_MAX = 128  # a query's first top-k is filled by ranking when its start subtree is this small


@njit(inline="always")
def _box_lb(q, lo, hi, node):
    """Squared distance from q to the node's box (exact-monotone, no contraction)."""
    D = q.shape[0]
    s = 0.0
    for c in range(D):
        g = lo[node, c] - q[c]
        h = q[c] - hi[node, c]
        if h > g:
            g = h
        if g > 0.0:
            s += g * g
    return s


@njit(parallel=True, fastmath=False, cache=True)
def query_groups(q64, lo, hi, depth, group_max):
    """Queries grouped by the leaf their nearer-box descent ends in.

    Returns ``order`` (queries sorted by leaf, stable) and groups of consecutive entries of
    ``order`` that share a leaf, at most ``group_max`` each: (group_start, group_end, group_leaf).
    """
    m, d = q64.shape
    first_leaf = (1 << depth) - 1
    leaf = np.empty(m, dtype=np.int64)
    for i in prange(m):
        node = 0
        for _ in range(depth):
            left = 2 * node + 1
            gl = 0.0
            gr = 0.0
            for c in range(d):
                v = q64[i, c]
                a = max(lo[left, c] - v, v - hi[left, c], 0.0)
                b = max(lo[left + 1, c] - v, v - hi[left + 1, c], 0.0)
                gl += a * a
                gr += b * b
            node = left if gl <= gr else left + 1
        leaf[i] = node - first_leaf
    n_leaves = 1 << depth
    counts = np.zeros(n_leaves + 1, dtype=np.int64)
    for i in range(m):
        counts[leaf[i] + 1] += 1
    n_groups = 0
    for t in range(n_leaves):
        n_groups += (counts[t + 1] + group_max - 1) // group_max
    for t in range(1, n_leaves + 1):
        counts[t] += counts[t - 1]
    g_start = np.empty(n_groups, dtype=np.int64)
    g_end = np.empty(n_groups, dtype=np.int64)
    g_leaf = np.empty(n_groups, dtype=np.int64)
    g = 0
    for t in range(n_leaves):
        for s in range(counts[t], counts[t + 1], group_max):
            g_start[g] = s
            g_end[g] = min(counts[t + 1], s + group_max)
            g_leaf[g] = t
            g += 1
    order = np.empty(m, dtype=np.int64)
    for i in range(m):
        order[counts[leaf[i]]] = i
        counts[leaf[i]] += 1
    return order, g_start, g_end, g_leaf


@njit(inline="always")
def _sq_dists(q, xt, s, e, buf):
    """Exact squared distances of points s..e into buf[4, :e - s].

    One dimension at a time (vectorised over points) into four partial sums (dimension c into
    sum c mod 4), combined as (s0 + s1) + (s2 + s3): the same operations, in the same order, as
    ``exact_sq_dist``."""
    D = q.shape[0]
    u0 = np.uint64(s)
    nt = np.uint64(e - s)
    for p in range(4):
        for jj in range(nt):
            buf[p, jj] = 0.0
    for c in range(D):
        qc = q[c]
        row = xt[c]
        acc = buf[c & 3]
        for jj in range(nt):
            a = row[u0 + jj] - qc
            acc[jj] += a * a
    out = buf[4]
    for jj in range(nt):
        out[jj] = (buf[0, jj] + buf[1, jj]) + (buf[2, jj] + buf[3, jj])
    return out


@njit(inline="always")
def _leaf_scan(q, xt, perm, s, e, hd, hi, k, skip, buf):
    """Push the points s..e that beat the query's top-k (``buf``: shape (5, >= e - s))."""
    thr = hd[0]
    out = _sq_dists(q, xt, s, e, buf)
    cnt = 0
    for jj in range(np.uint64(e - s)):
        cnt += out[jj] <= thr
    if cnt == 0:
        return
    for jj in range(e - s):
        r2 = out[jj]
        if r2 <= hd[0]:
            j = perm[s + jj]
            if j != skip:
                topk_push(hd, hi, k, r2, j)


@njit(inline="always")
def _rank_fill(q, xt, perm, s, e, hd, hi, k, skip, buf, ids):
    """Fill an empty top-k with the k nearest of points s..e (at least k of them, the query's
    own point excepted) by ranking: rank_i = #{j : (r_j, id_j) < (r_i, id_i)}, vectorised over
    j and free of unpredictable branches (several times cheaper than k pushes and more)."""
    n = e - s
    r = _sq_dists(q, xt, s, e, buf)
    for t in range(n):
        j = perm[s + t]
        ids[t] = j
        if j == skip:
            r[t] = math.inf
            ids[t] = INT_MAX
    for t in range(n):
        rt = r[t]
        it = ids[t]
        rank = 0
        for u in range(np.uint64(n)):
            rank += (r[u] < rt) | ((r[u] == rt) & (ids[u] < it))
        if rank < k:
            hd[k - 1 - rank] = rt
            hi[k - 1 - rank] = it


@njit(inline="always")
def _box_box_lb(b_lo, b_hi, lo, hi, node):
    """Squared distance between the query box [b_lo, b_hi] and the node's box."""
    D = b_lo.shape[0]
    s = 0.0
    for c in range(D):
        g = lo[node, c] - b_hi[c]
        h = b_lo[c] - hi[node, c]
        if h > g:
            g = h
        if g > 0.0:
            s += g * g
    return s


@njit(fastmath=False, cache=True)
def _query_group(q64, order, g0, g1, leaf, xt, perm, start, end, lo, hi, depth, k, exclude_self,
                 use_groups, out_d, out_i, hd_blk, hi_blk, cand, cand_lb, stack, stack_b, buf,
                 ids, b_lo, b_hi):
    """The queries order[g0:g1], all in one leaf, searched together.

    1. Each query scans the smallest subtree above the shared leaf holding enough points: its
       top-k is full, and the largest k-th distance T bounds what any query can still accept.
    2. With ``use_groups`` (low d), one traversal for the group collects the leaves within T of
       the queries' bounding box, sorted by that bound, and each query scans those of them that
       its own box bound does not rule out. Otherwise (the group box and T are too loose in
       higher d) each query runs its own depth-first search, nearer child first.
    """
    D = q64.shape[1]
    first_leaf = (1 << depth) - 1
    need = k + 1 if exclude_self else k
    node = first_leaf + leaf
    h = 0
    while node > 0 and end[node] - start[node] < need:
        node = (node - 1) // 2
        h += 1
    sub = node
    leaf_a = ((sub + 1) << h) - 1
    leaf_b = leaf_a + (1 << h)
    nq = g1 - g0
    for c in range(D):
        b_lo[c] = math.inf
        b_hi[c] = -math.inf
    T = 0.0
    for t in range(nq):
        i = order[g0 + t]
        q = q64[i]
        hd = hd_blk[t]
        hi_ = hi_blk[t]
        skip = i if exclude_self else -1
        if end[sub] - start[sub] <= RANK_MAX:
            _rank_fill(q, xt, perm, start[sub], end[sub], hd, hi_, k, skip, buf, ids)
        else:
            hd[:k] = math.inf
            hi_[:k] = INT_MAX
            for lf in range(leaf_a, leaf_b):
                _leaf_scan(q, xt, perm, start[lf], end[lf], hd, hi_, k, skip, buf)
        T = max(T, hd[0])
        for c in range(D):
            b_lo[c] = min(b_lo[c], q[c])
            b_hi[c] = max(b_hi[c], q[c])
    if not use_groups:
        for t in range(nq):
            i = order[g0 + t]
            _dfs(q64[i], xt, perm, start, end, lo, hi, depth, k, i if exclude_self else -1,
                 hd_blk[t], hi_blk[t], sub, stack, stack_b, buf)
            _write(hd_blk[t], hi_blk[t], k, out_d, out_i, i)
        return
    # 2. leaves within T of the group box, outside the subtree already scanned
    n_cand = 0
    top = 0
    stack[0] = 0
    while top >= 0:
        nd = stack[top]
        top -= 1
        if nd == sub:
            continue
        lb = _box_box_lb(b_lo, b_hi, lo, hi, nd)
        if lb > T:
            continue
        if nd >= first_leaf:
            # insertion by bound
            p = n_cand
            while p > 0 and cand_lb[p - 1] > lb:
                cand[p] = cand[p - 1]
                cand_lb[p] = cand_lb[p - 1]
                p -= 1
            cand[p] = nd
            cand_lb[p] = lb
            n_cand += 1
        else:
            top += 1
            stack[top] = 2 * nd + 2
            top += 1
            stack[top] = 2 * nd + 1
    # 3. per query
    for t in range(nq):
        i = order[g0 + t]
        q = q64[i]
        hd = hd_blk[t]
        hi_ = hi_blk[t]
        skip = i if exclude_self else -1
        for p in range(n_cand):
            if cand_lb[p] > hd[0]:
                break
            lf = cand[p]
            if _box_lb(q, lo, hi, lf) <= hd[0]:
                _leaf_scan(q, xt, perm, start[lf], end[lf], hd, hi_, k, skip, buf)
        _write(hd, hi_, k, out_d, out_i, i)


@njit(inline="always")
def _write(hd, hi, k, out_d, out_i, i):
    topk_sort(hd, hi, k)
    for r in range(k):
        out_d[i, r] = math.sqrt(hd[r])
        out_i[i, r] = hi[r]


@njit(inline="always")
def _dfs(q, xt, perm, start, end, lo, hi, depth, k, skip, hd, hi_, sub, stack_n, stack_b, buf):
    """Depth-first search for one query, nearer child first, skipping the subtree ``sub``."""
    first_leaf = (1 << depth) - 1
    top = 0
    stack_n[0] = 0
    stack_b[0] = 0.0
    while top >= 0:
        node = stack_n[top]
        lb = stack_b[top]
        top -= 1
        if lb > hd[0] or node == sub:
            continue
        while node < first_leaf:
            left = 2 * node + 1
            bl = _box_lb(q, lo, hi, left)
            br = _box_lb(q, lo, hi, left + 1)
            if bl <= br:
                near, far, bn, bf = left, left + 1, bl, br
            else:
                near, far, bn, bf = left + 1, left, br, bl
            if bf <= hd[0] and far != sub:
                top += 1
                stack_n[top] = far
                stack_b[top] = bf
            if bn > hd[0] or near == sub:
                node = -1
                break
            node = near
        if node >= 0:
            _leaf_scan(q, xt, perm, start[node], end[node], hd, hi_, k, skip, buf)


@njit(parallel=True, fastmath=False, cache=True)
def kdtree_query(q64, order, g_start, g_end, g_leaf, group_max, xt, perm, start, end, lo, hi,
                 depth, k, exclude_self, use_groups, out_d, out_i, n_workers):
    d = q64.shape[1]
    first_leaf = (1 << depth) - 1
    n_leaves = 1 << depth
    max_leaf = 0
    for node in range(first_leaf, start.shape[0]):
        max_leaf = max(max_leaf, end[node] - start[node])
    n_groups = g_start.shape[0]
    n_tasks = (n_groups + GROUPS_PER_TASK - 1) // GROUPS_PER_TASK
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(n_workers):  # one iteration per thread; tasks handed out dynamically
        hd_blk = np.empty((group_max, k))
        hi_blk = np.empty((group_max, k), dtype=np.int64)
        cand = np.empty(n_leaves, dtype=np.int64)
        cand_lb = np.empty(n_leaves)
        stack = np.empty(2 * depth + 4, dtype=np.int64)
        stack_b = np.empty(2 * depth + 4)
        buf = np.empty((5, max(max_leaf, RANK_MAX)))
        ids = np.empty(RANK_MAX, dtype=np.int64)
        b_lo = np.empty(d)
        b_hi = np.empty(d)
        while True:
            task = next_task(counter)
            if task >= n_tasks:
                break
            for g in range(task * GROUPS_PER_TASK, min(n_groups, (task + 1) * GROUPS_PER_TASK)):
                _query_group(q64, order, g_start[g], g_end[g], g_leaf[g], xt, perm, start, end, lo,
                             hi, depth, k, exclude_self, use_groups, out_d, out_i, hd_blk, hi_blk,
                             cand, cand_lb, stack, stack_b, buf, ids, b_lo, b_hi)
