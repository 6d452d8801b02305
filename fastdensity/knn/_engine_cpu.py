"""The CPU kNN engine: the exact brute-force screen or the k-d tree of ``_knn_cpu.py`` on NumPy data."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from .._backend import array_kind, from_host_numpy, threads
from ._knn_cpu import knn_distances, knn_index


@dataclass
class HostState:
    """What the host searches run on: ``source`` (the fitted training data, on either device),
    ``train`` = its host copy times 2^-e (see :func:`_scaled`) and the search index over it."""

    source: object
    train: np.ndarray
    exponent: int
    index: object


def _scaled(train):
    """(``train`` times 2^-e, e): e = 0 for ordinary data and, for data whose magnitude is below
    2^-100 or above 2^100 (2^±15 for float32), e the exponent of max |x|: squared distances would
    underflow to 0 (distinct points at distance 0) or overflow there. Scaling by a power of two
    is exact."""
    with np.errstate(over="ignore"):
        top = float(np.max(np.abs(train))) if train.size else 0.0
    limit = 15 if train.dtype == np.float32 else 100
    e = int(np.frexp(top)[1]) if top > 0 else 0
    if abs(e) <= limit:
        return train, 0
    return np.ldexp(train, -e).astype(train.dtype, copy=False), e


class CPUEngine:
    name = "cpu"
    xp = np

    def prepare(self, train, algorithm):
        # A model fitted on a GPU and asked about host data copies its training data here once.
        host = sys.modules["cupy"].asnumpy(train) if array_kind(train).namespace == "cupy" else train
        scaled, e = _scaled(host)
        return HostState(source=train, train=scaled, exponent=e, index=knn_index(scaled, algorithm))

    def is_prepared_for(self, state, train):
        return state.source is train

    def kneighbors(self, state, queries, k, n_jobs):
        e = state.exponent
        if queries is not None and e:
            # Scaled like the training data; beyond the dtype's range a query is as far as the
            # largest finite one (its distances overflow to inf all the same).
            big = np.finfo(queries.dtype).max
            with np.errstate(over="ignore"):
                queries = np.clip(np.ldexp(queries, -e).astype(queries.dtype, copy=False), -big, big)
        with threads(n_jobs):
            if queries is None:
                dist, ind = knn_distances(state.train, None, k, exclude_self=True, index=state.index)
            else:
                dist, ind = knn_distances(queries, None, k, index=state.index)
        if e:
            with np.errstate(over="ignore"):
                dist = np.ldexp(dist, e).astype(dist.dtype, copy=False)
        return dist, ind

    def rows(self, fn, dist, *args):
        return fn(self, dist, *args)

    def to_host(self, a):
        return a

    def to_caller(self, result, kind):
        return from_host_numpy(result, kind)


CPU_ENGINE = CPUEngine()
