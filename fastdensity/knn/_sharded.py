"""Exact k nearest neighbours against a training set held in shards (dask row blocks).

The k nearest neighbours of a query among all n training points are the k smallest (distance,
index) pairs of the union of its per-shard lists, so each shard is searched on its own by the CPU
engine (its search index built once per computation, one task per shard, shared by every query
chunk), the shard's indices shifted by the shard's first row, and the lists of one query chunk are
merged in a balanced tree (:func:`merge_topk`: keep the k smallest, ties to the smaller index, as
every engine orders them). The distances are the CPU engine's exact float64 ones, computed on the
same numbers whatever the sharding, so the result is the in-memory one.

Leave-one-out (the training points as queries, each without itself): a query chunk that is a
shard excludes its own points within that shard (the CPU engine's ``queries=None`` search) and
searches the other shards in full.

The functions here build ``Delayed`` graphs and compute nothing; ``_engine_dask`` and the metrics
(``metrics/_prdc_dask``) assemble them into dask arrays or scalars.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ._engine_cpu import CPU_ENGINE


class Shards(NamedTuple):
    """A sharded training set: one ``Delayed`` CPU-engine state per non-empty row block, the
    block's first row in the whole set and its number of rows."""

    states: list
    offsets: list
    rows: list


def _prepare_block(block, algorithm, n_jobs, name, message):
    from .._backend import threads

    block = checked_block(block, name, block.shape[1] if block.ndim == 2 else -1, message)
    with threads(n_jobs):
        return CPU_ENGINE.prepare(block, algorithm)


def shards_of(X, algorithm, n_jobs=None, name="X", finite_message=None):
    """The :class:`Shards` of a 2-D dask array with one column chunk and known row chunks: a task
    per non-empty block that checks it (:func:`checked_block`, ``name`` in its errors) and builds
    its search index (``algorithm``: "brute" or "kd_tree")."""
    import dask

    blocks = X.to_delayed()[:, 0]
    states, offsets, rows = [], [], []
    start = 0
    for block, size in zip(blocks, X.chunks[0]):
        if size > 0:
            states.append(dask.delayed(_prepare_block, pure=True)(block, algorithm, n_jobs, name, finite_message or _MESSAGE))
            offsets.append(start)
            rows.append(int(size))
        start += size
    return Shards(states, offsets, rows)


_MESSAGE = "Input {name} contains NaN or infinity."  # scikit-learn's words for estimator input


def checked_block(block, name, n_features, finite_message=_MESSAGE):
    """A block as the CPU engine takes it (C-contiguous float32/float64, finite), or the
    ValueError of the in-memory checks (raised by the task that meets it)."""
    block = np.ascontiguousarray(block)
    if block.dtype not in (np.float32, np.float64):
        block = block.astype(np.float64)
    if block.ndim != 2 or block.shape[1] != n_features:
        raise ValueError(f"{name} must have shape (m, {n_features}); got {block.shape}")
    if not np.isfinite(block).all():
        raise ValueError(finite_message.format(name=name))
    return block


def _search_shard(state, queries, k, n_jobs, offset, rows, own):
    """(distances, global indices) of the min(k, available) nearest points of one shard; ``own``:
    the queries are this shard's points, each excluded from its own list."""
    available = rows - 1 if own else rows
    kk = min(k, available)
    m = rows if own else queries.shape[0]
    if kk <= 0:
        dtype = state.train.dtype if own else queries.dtype
        return np.empty((m, 0), dtype=dtype), np.empty((m, 0), dtype=np.int64)
    dist, ind = CPU_ENGINE.kneighbors(state, None if own else queries, kk, n_jobs)
    return dist, ind + offset


def merge_topk(a, b, k):
    """The k smallest (distance, index) pairs of each row of two lists ``(dist, ind)``, sorted by
    distance, ties to the smaller index (fewer than k when both together hold fewer)."""
    dist = np.concatenate([a[0], b[0]], axis=1)
    ind = np.concatenate([a[1], b[1]], axis=1)
    order = np.lexsort((ind, dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(ind, order, axis=1)


def topk_of_chunk(shards, queries, k, n_jobs, own_shard=None):
    """One ``Delayed`` (distances, indices) of shape (m, k) for a query chunk (a ``Delayed``
    array): the searches of every shard merged in a balanced tree. ``own_shard``: the position in
    ``shards`` of the shard these queries are (leave-one-out), or None."""
    import dask

    from .._backend._dask import tree_reduce

    parts = [
        dask.delayed(_search_shard, pure=True)(state, queries, k, n_jobs, offset, rows, i == own_shard)
        for i, (state, offset, rows) in enumerate(zip(shards.states, shards.offsets, shards.rows))
    ]
    return tree_reduce(parts, functools.partial(merge_topk, k=k))


def _empty(k, dtype):
    return np.empty((0, k), dtype=dtype)


def as_dask_arrays(parts, chunk_rows, k, dist_dtype):
    """Two dask arrays (distances, indices) with row chunks ``chunk_rows`` (empty ones kept) and one
    column chunk, from the ``Delayed`` (distances, indices) of each chunk (None for an empty one)."""
    import operator
    import uuid

    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    token = uuid.uuid4().hex
    deps = [p for p in parts if p is not None]
    out = []
    for j, (name, dtype) in enumerate(((f"knn-distances-{token}", np.dtype(dist_dtype)),
                                        (f"knn-indices-{token}", np.dtype(np.int64)))):
        layer = {
            (name, i, 0): (_empty, k, dtype) if p is None else (operator.getitem, p.key, j)
            for i, p in enumerate(parts)
        }
        graph = HighLevelGraph.from_collections(name, layer, dependencies=deps)
        out.append(da.Array(graph, name, (tuple(chunk_rows), (k,)), dtype=dtype, meta=np.empty((0, 0), dtype)))
    return out[0], out[1]


def query_parts(shards, X, k, n_jobs, name="X", finite_message=None):
    """The ``Delayed`` (distances, indices) of each row chunk of the 2-D dask array ``X`` (one
    column chunk, known chunks) against ``shards``; None for an empty chunk."""
    import dask

    d = X.shape[1]
    parts = []
    for block, rows in zip(X.to_delayed()[:, 0], X.chunks[0]):
        if rows == 0:
            parts.append(None)
            continue
        queries = dask.delayed(checked_block, pure=True)(block, name, d, finite_message or _MESSAGE)
        parts.append(topk_of_chunk(shards, queries, k, n_jobs))
    return parts


def loo_parts(shards, chunk_rows, k, n_jobs):
    """The ``Delayed`` leave-one-out (distances, indices) of each row chunk of the training set
    itself (the chunks ``shards`` was made of, empty ones included: None)."""
    parts, position = [], 0
    for rows in chunk_rows:
        if rows == 0:
            parts.append(None)
            continue
        state = shards.states[position]
        queries = _own_points(state)
        parts.append(topk_of_chunk(shards, queries, k, n_jobs, own_shard=position))
        position += 1
    return parts


def _own_points(state):
    import dask

    return dask.delayed(_train_of, pure=True)(state)


def _train_of(state):
    return state.source
