"""Per-query top-k of (squared distance, index) pairs and the exact distance, shared by the
brute-force and k-d tree engines (Numba).

A query's current k best pairs live in two arrays (hd, hi) whose first entry is always the
worst of them (the k-th), so hd[0] is the query's threshold. For k ≤ ``SMALL_K`` they are kept
in descending order and a new pair is inserted by one branch-free pass; above it they form a
binary max-heap. Both start filled with (inf, INT_MAX). Pairs compare as (distance, index), so
ties go to the smaller index whatever order the candidates arrive in.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SMALL_K = 32
INT_MAX = np.iinfo(np.int64).max


@njit(inline="always")
def _greater(d1, i1, d2, i2):
    return (d1 > d2) | ((d1 == d2) & (i1 > i2))


@njit(inline="always")
def _sift_down(hd, hi, pos, k, dist, idx):
    """Place (dist, idx) at ``pos`` of the max-heap (hd, hi)[:k] and sift it down."""
    while True:
        c = 2 * pos + 1
        if c >= k:
            break
        if c + 1 < k and _greater(hd[c + 1], hi[c + 1], hd[c], hi[c]):
            c += 1
        if not _greater(hd[c], hi[c], dist, idx):
            break
        hd[pos] = hd[c]
        hi[pos] = hi[c]
        pos = c
    hd[pos] = dist
    hi[pos] = idx


@njit(inline="always")
def _sorted_insert(hd, hi, k, dist, idx):
    """Drop hd[0] (the largest) from the descending arrays and insert (dist, idx) in order."""
    t = 0
    while t < k - 1 and _greater(hd[t + 1], hi[t + 1], dist, idx):
        hd[t] = hd[t + 1]
        hi[t] = hi[t + 1]
        t += 1
    hd[t] = dist
    hi[t] = idx


@njit(inline="always")
def topk_push(hd, hi, k, dist, idx):
    """Offer (dist, idx) to the query's top-k; returns True if it went in."""
    if not _greater(hd[0], hi[0], dist, idx):
        return False
    if k <= SMALL_K:
        _sorted_insert(hd, hi, k, dist, idx)
    else:
        _sift_down(hd, hi, 0, k, dist, idx)
    return True


@njit(cache=True)
def topk_sort(hd, hi, k):
    """Sort the top-k ascending by (distance, index), in place."""
    if k <= SMALL_K:
        for t in range(k // 2):
            u = k - 1 - t
            hd[t], hd[u] = hd[u], hd[t]
            hi[t], hi[u] = hi[u], hi[t]
        return
    for end in range(k - 1, 0, -1):
        d = hd[end]
        i = hi[end]
        hd[end] = hd[0]
        hi[end] = hi[0]
        _sift_down(hd, hi, 0, end, d, i)


# fastmath=False explicitly: Numba lets a callee inherit its caller's fastmath flags unless it
# sets them, and contraction into FMAs or reassociation would change the rounding from one caller
# to another.
@njit(fastmath=False, cache=True)
def exact_sq_dist(train, j, q):
    """Σ_c (x_jc − q_c)² in float64, in a fixed order: four partial sums (dimension c goes to sum
    c mod 4, in increasing c), combined as (s0 + s1) + (s2 + s3), no FMA contraction. The k-d
    tree's leaf scan computes exactly the same operations, so both engines return identical
    distances; four chains instead of one make it several times faster than a plain loop."""
    d = q.shape[0]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    c = 0
    while c + 4 <= d:
        a = np.float64(train[j, c]) - np.float64(q[c])
        s0 += a * a
        a = np.float64(train[j, c + 1]) - np.float64(q[c + 1])
        s1 += a * a
        a = np.float64(train[j, c + 2]) - np.float64(q[c + 2])
        s2 += a * a
        a = np.float64(train[j, c + 3]) - np.float64(q[c + 3])
        s3 += a * a
        c += 4
    if c < d:
        a = np.float64(train[j, c]) - np.float64(q[c])
        s0 += a * a
    if c + 1 < d:
        a = np.float64(train[j, c + 1]) - np.float64(q[c + 1])
        s1 += a * a
    if c + 2 < d:
        a = np.float64(train[j, c + 2]) - np.float64(q[c + 2])
        s2 += a * a
    return (s0 + s1) + (s2 + s3)
