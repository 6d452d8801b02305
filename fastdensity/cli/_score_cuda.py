"""``fastdensity score --backend cuda``: batches streamed to the GPU through two pinned host
buffers, so that a file larger than GPU memory is scored at the kernel's rate.

Two slots, each a page-locked host buffer (``cupy.cuda.alloc_pinned_memory``) and a device buffer
of ``batch_size`` rows, and two streams: the copy stream moves a slot's pinned rows to its device
buffer (asynchronous, as only pinned memory allows), the compute stream waits for that copy's
event and runs the model on the device rows. While the kernels of batch i run, the host reads
batch i+1 from the file into the other slot and queues its copy, which thus overlaps them; then
the host waits for batch i's scores (a device-to-host copy on the compute stream) and writes them.
A slot is refilled only after the scores of the batch it last held came back, so neither buffer
is overwritten while a copy or a kernel still reads it.

The model is the same object for every batch: an estimator that keeps a device copy of its
fitted state (KernelDensity, KNNDensity) moves it once, on the first batch; a GaussianMixture's
parameters are (k, d, d)-sized and go with each launch.

Unverified on a GPU until it has run on one: the tests run this module with a stand-in ``cupy``
(NumPy arrays, recorded streams and events), which checks the order of the operations, the last
partial batch and that no batch is lost or scored twice, not the overlap itself or its speed.
"""

from __future__ import annotations

import numpy as np


def gpu_dtype(source_dtype) -> np.dtype:
    """float32 files stay float32 on the GPU (its float kernels); everything else is float64."""
    return np.dtype(np.float32) if np.dtype(source_dtype) == np.float32 else np.dtype(np.float64)


class _Slot:
    """A pinned host buffer, a device buffer and the event of its last host-to-device copy."""

    def __init__(self, cp, rows, n_features, dtype):
        nbytes = rows * n_features * dtype.itemsize
        self.memory = cp.cuda.alloc_pinned_memory(nbytes)  # kept alive with the view below
        self.host = np.frombuffer(self.memory, dtype=dtype, count=rows * n_features).reshape(rows, n_features)
        self.device = cp.empty((rows, n_features), dtype=dtype)
        self.copied = None
        self.m = 0

    def stage(self, cp, rows, copy_stream):
        """Put ``rows`` in the pinned buffer and queue their copy to the device on ``copy_stream``."""
        m = len(rows)
        self.host[:m] = rows
        self.device[:m].set(self.host[:m], stream=copy_stream)
        self.copied = cp.cuda.Event()
        self.copied.record(copy_stream)
        self.m = m


def score_on_gpu(estimator, batches, writer, bar, batch_size, n_features, dtype, cp=None):
    """Score the host ``batches`` (an iterable of 2-D arrays of at most ``batch_size`` rows) on
    the current GPU, writing each batch's scores to ``writer`` in order; returns the row count."""
    if cp is None:
        from .._backend._cuda import require_cupy

        cp = require_cupy("fastdensity score --backend cuda", alternative="--backend cpu")
    dtype = np.dtype(dtype)
    rows_per_slot = batch_size
    slots = [_Slot(cp, rows_per_slot, n_features, dtype) for _ in range(2)]
    copy_stream = cp.cuda.Stream(non_blocking=True)
    compute_stream = cp.cuda.Stream(non_blocking=True)
    batches = iter(batches)
    first = next(batches, None)
    if first is None:
        return 0
    slots[0].stage(cp, first, copy_stream)
    current, total = 0, 0
    while True:
        slot = slots[current]
        compute_stream.wait_event(slot.copied)
        with compute_stream:
            scores = estimator.score_samples(slot.device[:slot.m])
        following = next(batches, None)  # read from the file while the kernels run
        if following is not None:
            slots[1 - current].stage(cp, following, copy_stream)
        values = cp.asnumpy(scores, stream=compute_stream)  # waits for batch `current`'s kernels
        if values.shape != (slot.m,):
            raise ValueError(f"{type(estimator).__name__}.score_samples returned shape {values.shape} "
                             f"for {slot.m} rows")
        writer.write(values)
        bar.update(slot.m)
        total += slot.m
        if following is None:
            break
        current = 1 - current
    return total
