"""The kNN engine interface, and the choice of engine from the array type.

An engine owns the numbers of one backend. ``prepare(train, algorithm)`` builds, once, the state
its searches run on (the search index on the CPU; the training data on each GPU that asks for it),
and ``kneighbors(state, queries, k, n_jobs)`` returns ``(distances, indices)`` of shape (m, k),
sorted by distance, ties to the smaller training index; ``queries=None`` searches the training
points themselves, each excluded from its own list (leave-one-out). Results are arrays of the
engine's namespace ``xp`` (NumPy or CuPy; lazy dask arrays on the Dask engine, whose training
set stays sharded: ``_engine_dask.py``); ``rows(fn, dist, *args)`` runs the estimator's per-row
formula ``fn(engine, dist, *args)`` on a result (per chunk on Dask), ``to_host`` brings a small
array to NumPy and ``to_caller`` converts a result to the caller's array type.

The estimator (``_knn.py``) validates, asks :func:`engine_for` once per call for the engine of the
validated data, and writes the rest (log densities, warnings, results) once against ``xp``.

Adding a backend: a module with an object of this shape, and one line in :func:`engine_for`.
"""

from __future__ import annotations

from typing import Any, Protocol

from .._backend import array_kind


class KNNEngine(Protocol):
    name: str

    @property
    def xp(self) -> Any: ...

    def prepare(self, train, algorithm: str) -> Any: ...

    def is_prepared_for(self, state, train) -> bool: ...

    def kneighbors(self, state, queries, k: int, n_jobs) -> tuple: ...

    def rows(self, fn, dist, *args): ...

    def to_host(self, a): ...

    def to_caller(self, result, kind): ...


def engine_for(array) -> KNNEngine:
    """The engine for data held as ``array`` (validated: NumPy, CuPy or dask)."""
    if array_kind(array).namespace == "dask":
        from ._engine_dask import DASK_ENGINE

        return DASK_ENGINE
    if array_kind(array).namespace == "cupy":
        from ._engine_cuda import CUDA_ENGINE

        return CUDA_ENGINE
    from ._engine_cpu import CPU_ENGINE

    return CPU_ENGINE
