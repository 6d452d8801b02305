"""The Dask kNN engine: searches against a training set that stays sharded on the workers.

``prepare`` keeps the fitted dask array as it is (its rows are never gathered) after one pass that
checks its values are finite; every search then builds the shards' indexes (one task per row
block, shared by all query chunks of that computation: persist the array first to keep its rows
in the workers' memory) and merges the per-shard top-k lists of each query chunk in a tree
(``_sharded``). A model fitted in memory and asked about a dask array of queries uses this engine
with its training set as one shard, its CPU state shipped to the workers once as a named key.

Queries as a dask array give lazy dask arrays with the queries' row chunks; NumPy queries are
split into chunks of ``QUERY_ROWS``, computed at once and come back as NumPy arrays;
``queries=None`` is leave-one-out over the training set's own row chunks (lazy). ``rows(fn,
dist, ...)`` applies the estimator's per-row formula on each chunk of a lazy result, with the
chunk's first row (for the warnings' row numbers), or directly on NumPy results.

See ``_engine.py`` for the interface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._backend import from_host_numpy
from .._backend._dask import non_finite_count, one_column_chunk
from .._backend._namespace import _is_dask_array
from ._engine_cpu import CPU_ENGINE
from ._sharded import Shards, as_dask_arrays, loo_parts, query_parts, shards_of

QUERY_ROWS = 65536  # NumPy queries per chunk (bounds the (rows, k) lists held per shard task)


@dataclass
class DaskState:
    """``source``: the fitted training data (a dask array, or a NumPy array fitted in memory);
    ``algorithm``: the CPU engine's search per shard; ``shards``: for in-memory data, the one
    shard of its prepared CPU state (else built per computation)."""

    source: object
    algorithm: str
    shards: Shards | None = None


def check_finite(X, name="X"):
    """One pass over a dask array (sums of per-block counts): ValueError if a value is NaN or
    infinite."""
    import dask

    if X.size and dask.compute(non_finite_count(X))[0]:
        raise ValueError(f"Input {name} contains NaN or infinity.")


class DaskEngine:
    name = "dask"

    @property
    def xp(self):
        import dask.array

        return dask.array

    def prepare(self, train, algorithm):
        if _is_dask_array(train):
            check_finite(train)
            return DaskState(source=train, algorithm=algorithm)
        # Fitted in memory: one shard, the CPU state shipped once (a named key, not tokenized).
        from .._backend._dask import _shipped

        return DaskState(source=train, algorithm=algorithm,
                         shards=Shards([_shipped_state(train, algorithm, _shipped)], [0], [train.shape[0]]))

    def is_prepared_for(self, state, train):
        return state.source is train

    def _shards(self, state, n_jobs):
        if state.shards is not None:
            return state.shards
        return shards_of(one_column_chunk(state.source), state.algorithm, n_jobs)

    def kneighbors(self, state, queries, k, n_jobs):
        shards = self._shards(state, n_jobs)
        if queries is None:
            train = state.source
            if not _is_dask_array(train):
                raise TypeError("leave-one-out on the Dask engine needs a training set held as a dask array")
            parts = loo_parts(shards, train.chunks[0], k, n_jobs)
            return as_dask_arrays(parts, train.chunks[0], k, train.dtype)
        if _is_dask_array(queries):
            X = one_column_chunk(queries)
            return as_dask_arrays(query_parts(shards, X, k, n_jobs), X.chunks[0], k, _result_dtype(X.dtype))
        if type(queries) is not np.ndarray:
            raise TypeError(
                f"a KNNDensity fitted on a dask array takes NumPy or dask arrays of queries (or torch CPU "
                f"tensors); got {type(queries).__module__}.{type(queries).__name__}"
            )
        import dask
        import dask.array as da

        X = da.from_array(queries, chunks=(QUERY_ROWS, -1))
        dist, ind = as_dask_arrays(query_parts(shards, X, k, n_jobs), X.chunks[0], k, queries.dtype)
        return dask.compute(dist, ind)

    def rows(self, fn, dist, *args):
        """``fn(engine, dist, *args, first_row=...)`` per row chunk of a lazy ``dist`` (a 1-D
        result with its row chunks), or once on a NumPy ``dist``."""
        if not _is_dask_array(dist):
            return fn(CPU_ENGINE, dist, *args)
        meta = fn(CPU_ENGINE, np.ones((1, dist.shape[1]), dtype=dist.dtype), *args)
        return dist.map_blocks(_rows_block, fn, args, drop_axis=1, dtype=meta.dtype, meta=meta[:0])

    def to_host(self, a):
        return np.asarray(a.compute()) if _is_dask_array(a) else a

    def to_caller(self, result, kind):
        if _is_dask_array(result):
            return result
        return from_host_numpy(result, kind)


def _result_dtype(dtype):
    return dtype if dtype == np.float32 else np.dtype(np.float64)


def _rows_block(block, fn, args, block_info=None):
    first = block_info[0]["array-location"][0][0] if block_info else 0
    return fn(CPU_ENGINE, block, *args, first_row=first)


def _shipped_state(train, algorithm, shipped):
    """The CPU engine's state over in-memory ``train`` as one named graph key."""
    state = CPU_ENGINE.prepare(train, algorithm)
    return shipped(state)


DASK_ENGINE = DaskEngine()
