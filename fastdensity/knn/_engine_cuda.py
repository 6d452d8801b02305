"""The CUDA kNN engine: brute force on the GPU (``_knn_cuda.py``); CuPy is imported only when used."""

from __future__ import annotations

import sys

from .._backend import OPS, array_kind, get_op
from .._backend._convert import from_device_cupy


class DeviceState:
    """The training data on each GPU that has searched it: ``source`` (the fitted training data,
    on the host or a GPU) moved once per device, cached."""

    def __init__(self, source):
        self.source = source
        self.on_device = {}

    def train_on(self, device_id):
        from .._backend._cuda import require_cupy

        cp = require_cupy("backend='cuda'")
        source = self.source
        source_on_gpu = array_kind(source).namespace == "cupy"
        if source_on_gpu and source.device.id == device_id:
            return source
        if device_id not in self.on_device:
            with cp.cuda.Device(device_id):
                self.on_device[device_id] = source.copy() if source_on_gpu else cp.asarray(source)
        return self.on_device[device_id]


def _knn_distances_cuda():
    """The CUDA ``knn_distances`` op (through the dispatch table once it lists it)."""
    if "cuda" in OPS.get("knn_distances", {}):
        return get_op("knn_distances", "cuda")
    from ._knn_cuda import knn_distances

    return knn_distances


class CUDAEngine:
    name = "cuda"

    @property
    def xp(self):
        return sys.modules["cupy"]

    def prepare(self, train, algorithm):
        # The GPU engine is brute force whatever ``algorithm`` says: it needs no index.
        return DeviceState(train)

    def is_prepared_for(self, state, train):
        return state.source is train

    def kneighbors(self, state, queries, k, n_jobs):
        loo = queries is None
        queries = state.source if loo else queries
        with queries.device:
            train = state.train_on(queries.device.id)
            return _knn_distances_cuda()(queries, train, k, exclude_self=loo)

    def rows(self, fn, dist, *args):
        return fn(self, dist, *args)

    def to_host(self, a):
        return self.xp.asnumpy(a)

    def to_caller(self, result, kind):
        return from_device_cupy(result, kind)


CUDA_ENGINE = CUDAEngine()
