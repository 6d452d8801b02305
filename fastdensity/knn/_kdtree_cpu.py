"""A k-d tree for exact k-nearest neighbours in low dimension (Numba): ``KDTree``.

Its build lives in ``_kdtree_build`` (with ``build_order``, the k-d ordering that the brute-force
engine uses for its panels and query blocks), its search kernels in ``_kdtree_query``.

* Build: median splits (quickselect) on the widest side of the node's box, down to leaves of
  at most ``leaf_size`` points; the tree is balanced and implicit (node i has children 2i + 1
  and 2i + 2), with each node's tight bounding box. Points are reordered so that a node's
  points are contiguous, stored transposed (d, n) so that leaf scans vectorise over points.
  The top levels are split serially, the subtrees below them in one parallel loop.
* Query: queries are grouped by the leaf their nearer-box descent reaches (``query_groups``),
  and a group is searched together (``_query_group``): each query first fills its top-k by
  *ranking* the points of the smallest subtree above the leaf that holds k of them (branch-free
  and vectorised, much cheaper than k and more pushes); then, in d ≤ ``GROUP_MAX_D``, one
  traversal collects the leaves within the group's largest k-th distance of the group's box and
  each query scans those its own box bound admits, nearest first; in higher d each query runs
  its own depth-first search, nearer child first. Tasks of a few groups are handed to the
  threads dynamically (``_sched.next_task``); each query is handled by one thread.
* Distances are computed with exactly the operations of ``exact_sq_dist`` (float64
  differences, four partial sums over dimensions, no contraction), so the tree and brute force
  return identical distances; box bounds use the same monotone operations, so a bound never
  exceeds the distance of a point inside the box and no neighbour (or tie) is pruned: a node is
  skipped only when its bound is strictly above the query's k-th distance.
* Measured (n = m = 100,000, d = 2, k = 10, one thread): build 17 ms, grouping 14 ms, search
  0.85 µs per query; scipy's ``cKDTree`` takes 1.7 µs per query and 20 ms to build.
"""

from __future__ import annotations

import numba
import numpy as np

from ._kdtree_build import _tight_boxes, build_order
from ._kdtree_query import GROUP_MAX, GROUP_MAX_D, kdtree_query, query_groups


class KDTree:
    """Exact k-d tree over ``train`` (n, d); ``query`` returns what ``knn_distances`` returns."""

    def __init__(self, train, leaf_size=32):
        train = np.ascontiguousarray(train)
        if train.dtype not in (np.float32, np.float64):
            train = train.astype(np.float64)
        self.train = train
        xs = train.astype(np.float64)
        self.perm, self.depth = build_order(xs, int(leaf_size), False, numba.get_num_threads())
        self.xt = np.ascontiguousarray(xs[self.perm].T)
        self.start, self.end, self.lo, self.hi = _tight_boxes(self.xt, self.depth)

    def query(self, queries, k, exclude_self=False):
        """k nearest neighbours of C-contiguous float ``queries`` (validated by the caller)."""
        n, d = self.train.shape
        m = queries.shape[0]
        out_d = np.empty((m, k))
        out_i = np.empty((m, k), dtype=np.int64)
        q64 = np.ascontiguousarray(queries, dtype=np.float64)
        order, g_start, g_end, g_leaf = query_groups(q64, self.lo, self.hi, self.depth, GROUP_MAX)
        kdtree_query(q64, order, g_start, g_end, g_leaf, GROUP_MAX, self.xt, self.perm, self.start,
                     self.end, self.lo, self.hi, self.depth, k, bool(exclude_self),
                     d <= GROUP_MAX_D, out_d, out_i, numba.get_num_threads())
        return out_d.astype(queries.dtype, copy=False), out_i
