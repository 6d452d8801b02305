"""Construction of the k-d tree of ``_kdtree_cpu`` (Numba), and ``build_order``, the k-d ordering
that the brute-force engine (``_knn_cpu``) also uses for its panels and query blocks.

``build_order`` permutes the points into k-d order by median splits (quickselect) on the widest
side of each node's box; ``_tight_boxes`` then gives every node of the implicit balanced tree its
tight bounding box.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._sched import next_task

_SERIAL_LEVELS = 3  # tree levels built serially before the subtrees are built in parallel


@njit(cache=True)
def _select(keys, perm, lo, hi, kth):
    """Reorder keys[lo:hi] (and perm alongside) so that keys[kth] is the value of rank kth."""
    while hi - lo > 1:
        # median of three pivot
        mid = lo + (hi - lo) // 2
        a = keys[lo]
        b = keys[mid]
        c = keys[hi - 1]
        if a > b:
            a, b = b, a
        if b > c:
            b = c
            if a > b:
                b = a
        pivot = b
        i = lo
        j = hi - 1
        while i <= j:
            while keys[i] < pivot:
                i += 1
            while keys[j] > pivot:
                j -= 1
            if i <= j:
                t = keys[i]
                keys[i] = keys[j]
                keys[j] = t
                p = perm[i]
                perm[i] = perm[j]
                perm[j] = p
                i += 1
                j -= 1
        if kth <= j:
            hi = j + 1
        elif kth >= i:
            lo = i
        else:
            return


@njit(cache=True)
def _split_node(xs, perm, keys, s, e, mid, box_lo, box_hi):
    """Median split of perm[s:e] at ``mid`` on the widest side of the box; returns (dim, value)."""
    d = xs.shape[1]
    dim = 0
    widest = -1.0
    for c in range(d):
        w = box_hi[c] - box_lo[c]
        if w > widest:
            widest = w
            dim = c
    for t in range(s, e):
        keys[t] = xs[perm[t], dim]
    _select(keys, perm, s, e, mid)
    return dim, keys[mid]


@njit(cache=True)
def _build_node(xs, perm, keys, node, start, end, box_lo, box_hi, leaf_size, aligned):
    """Split one node: its children's ranges and (top-down) boxes."""
    s = start[node]
    e = end[node]
    if aligned:
        groups = (e - s + leaf_size - 1) // leaf_size
        mid = min(e, s + (groups - groups // 2) * leaf_size)
    else:
        mid = s + (e - s) // 2
    left = 2 * node + 1
    right = left + 1
    start[left] = s
    end[left] = mid
    start[right] = mid
    end[right] = e
    box_lo[left] = box_lo[node]
    box_hi[left] = box_hi[node]
    box_lo[right] = box_lo[node]
    box_hi[right] = box_hi[node]
    if e - s >= 2 and s < mid < e:
        dim, value = _split_node(xs, perm, keys, s, e, mid, box_lo[node], box_hi[node])
        box_hi[left, dim] = value
        box_lo[right, dim] = value


@njit(cache=True)
def _build_subtree(xs, perm, keys, root, depth, start, end, box_lo, box_hi, leaf_size, aligned):
    """Split every internal node below ``root`` (serially, nodes in breadth-first order)."""
    first_leaf = (1 << depth) - 1
    lo = root
    width = 1
    while lo < first_leaf:
        for node in range(lo, lo + width):
            _build_node(xs, perm, keys, node, start, end, box_lo, box_hi, leaf_size, aligned)
        lo = 2 * lo + 1
        width *= 2


@njit(parallel=True, cache=True)
def build_order(xs, leaf_size, aligned, n_workers):
    """Permutation of the rows of ``xs`` into k-d order, and the number of levels.

    Nodes are halved until they hold at most ``leaf_size`` points. With ``aligned`` every split
    falls on a multiple of ``leaf_size`` (consecutive groups of ``leaf_size`` points are then
    cells of the partition, the last one short); otherwise halves are balanced. The top
    ``_SERIAL_LEVELS`` levels are split serially, then the subtrees below them are handed out
    to the threads (disjoint ranges: the result does not depend on the threads; one parallel
    region, as every barrier costs a scheduler quantum on a loaded machine).
    """
    n, d = xs.shape
    perm = np.arange(n)
    keys = np.empty(n)
    depth = 0
    if aligned:
        groups = (n + leaf_size - 1) // leaf_size
        while (1 << depth) < groups:
            depth += 1
    else:
        while (n + (1 << depth) - 1) >> depth > leaf_size:
            depth += 1
    n_nodes = (1 << (depth + 1)) - 1
    start = np.zeros(n_nodes, dtype=np.int64)
    end = np.zeros(n_nodes, dtype=np.int64)
    box_lo = np.empty((n_nodes, d))
    box_hi = np.empty((n_nodes, d))
    end[0] = n
    for c in range(d):
        box_lo[0, c] = math.inf
        box_hi[0, c] = -math.inf
    for i in range(n):
        for c in range(d):
            v = xs[i, c]
            box_lo[0, c] = min(box_lo[0, c], v)
            box_hi[0, c] = max(box_hi[0, c], v)
    top = min(depth, _SERIAL_LEVELS)
    for node in range((1 << top) - 1):
        _build_node(xs, perm, keys, node, start, end, box_lo, box_hi, leaf_size, aligned)
    first = (1 << top) - 1
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(n_workers):  # one iteration per thread; subtrees handed out dynamically
        while True:
            t = next_task(counter)
            if t >= (1 << top):
                break
            _build_subtree(xs, perm, keys, first + t, depth, start, end, box_lo, box_hi, leaf_size,
                           aligned)
    return perm, depth


@njit(cache=True)
def _tight_boxes(xt, depth):
    """Tight bounding boxes of every node of the implicit balanced tree over xt (d, n).

    Serial: it takes well under a millisecond, less than a parallel region costs to start on a
    busy machine."""
    d, n = xt.shape
    n_nodes = (1 << (depth + 1)) - 1
    start = np.zeros(n_nodes, dtype=np.int64)
    end = np.zeros(n_nodes, dtype=np.int64)
    end[0] = n
    first_leaf = (1 << depth) - 1
    for node in range(first_leaf):
        s = start[node]
        e = end[node]
        mid = s + (e - s) // 2
        start[2 * node + 1] = s
        end[2 * node + 1] = mid
        start[2 * node + 2] = mid
        end[2 * node + 2] = e
    lo = np.full((n_nodes, d), math.inf)
    hi = np.full((n_nodes, d), -math.inf)
    for node in range(first_leaf, n_nodes):
        for c in range(d):
            for j in range(start[node], end[node]):
                v = xt[c, j]
                lo[node, c] = min(lo[node, c], v)
                hi[node, c] = max(hi[node, c], v)
    for node in range(first_leaf - 1, -1, -1):
        for c in range(d):
            lo[node, c] = min(lo[2 * node + 1, c], lo[2 * node + 2, c])
            hi[node, c] = max(hi[2 * node + 1, c], hi[2 * node + 2, c])
    return start, end, lo, hi
