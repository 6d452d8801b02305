"""``fastdensity score``: the log density of every row of DATA, streamed in batches.

The rows come from :mod:`._batches` (``.npy`` memory-mapped, ``.csv`` and Parquet read in
batches), so memory is bounded by the batch size, not by the file. Three ways to run:

- :func:`score_local`: this process, one batch after another (``--backend cpu``);
- :func:`score_on_dask`: a Dask cluster (``--workers N`` starts a local one, ``--scheduler ADDRESS``
  joins one): each batch is a task that reads its rows from the file's path and scores them with
  the model scattered once to every worker; at most ``2 × workers`` batches are in flight and the
  results are written in order as they come back;
- :func:`fastdensity.cli._score_cuda.score_on_gpu` (``--backend cuda``).

The output (:func:`score_writer`) is written to a temporary file next to OUT (a ``.npy`` through
``np.lib.format.open_memmap``, a ``.csv`` line by line) and renamed onto OUT only once every row is
written: an error or Ctrl-C leaves neither OUT nor the temporary file.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import os

import numpy as np

from ._files import _suffix

BAR_FORMAT = "{desc} {percentage:5.1f}% |{bar}| {n_fmt}/{total_fmt} rows [{elapsed}<{remaining}, {rate_fmt}]"


def progress_bar(total: int, stream, enabled: bool, desc: str = "scoring"):
    """A tqdm bar on ``stream`` (rows done, rate and ETA), a silent one when not ``enabled``."""
    from tqdm import tqdm

    return tqdm(total=total, file=stream, disable=not enabled, desc=desc, unit="rows", bar_format=BAR_FORMAT,
                mininterval=0.1, smoothing=0.3, ncols=100, ascii=True)


class _NpyOut:
    def __init__(self, tmp, n):
        self.tmp, self.n, self.done, self.out = tmp, n, 0, None

    def write(self, values):
        if self.out is None:  # the dtype of the first result (float64; float32 from float32 GPU data)
            self.out = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=values.dtype, shape=(self.n,))
        self.out[self.done:self.done + len(values)] = values
        self.done += len(values)

    def close(self):
        if self.out is not None:
            self.out.flush()
            del self.out
            self.out = None


class _CsvOut:
    def __init__(self, tmp, n):
        self.n, self.done = n, 0
        self.fh = open(tmp, "w", newline="", encoding="utf-8")
        csv.writer(self.fh, lineterminator="\n").writerow(["log_density"])

    def write(self, values):
        np.savetxt(self.fh, values, fmt="%.17g")
        self.done += len(values)

    def close(self):
        self.fh.close()


@contextlib.contextmanager
def score_writer(path, n: int):
    """Yield an object whose ``write(values)`` appends a batch of ``n`` scores to OUT, atomically."""
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        out = (_NpyOut if _suffix(path) == ".npy" else _CsvOut)(tmp, n)
        try:
            yield out
        finally:
            out.close()
        if out.done != n:  # pragma: no cover - a reader bug, never a half-written OUT
            raise RuntimeError(f"wrote {out.done} scores for {n} rows")


def _scores(estimator, rows):
    values = np.asarray(estimator.score_samples(rows))
    if values.shape != (len(rows),):
        raise ValueError(f"{type(estimator).__name__}.score_samples returned shape {values.shape} for "
                         f"{len(rows)} rows")
    return values


def score_local(estimator, source, batch_size, writer, bar):
    """Score the batches in this process, one after another."""
    for rows in source.batches(batch_size):
        writer.write(_scores(estimator, rows))
        bar.update(len(rows))


def _score_part(estimator, function, arguments, n_threads=None):
    from .._backend._threads import threads

    with threads(n_threads):
        return _scores(estimator, function(*arguments))


def score_on_dask(estimator, source, batch_size, writer, bar, address=None, workers=None):
    """Score the batches as Dask tasks (each reads its rows itself); write them back in order."""
    from ._streaming import scheduler

    with scheduler(address, workers) as client:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        # a local cluster shares this machine's cores: each worker's engine gets its share (N
        # workers on all cores each would oversubscribe them); an existing cluster keeps its own
        n_threads = max(1, (os.cpu_count() or 1) // n_workers) if address is None else None
        model = client.scatter(estimator, broadcast=True)
        pending = collections.deque()
        try:
            for function, arguments, n in source.parts(batch_size):
                pending.append((client.submit(_score_part, model, function, arguments, n_threads, pure=False), n))
                while len(pending) >= 2 * n_workers:
                    _drain_one(pending, writer, bar)
            while pending:
                _drain_one(pending, writer, bar)
        finally:
            if pending:
                client.cancel([future for future, _ in pending])
    return n_workers


def _drain_one(pending, writer, bar):
    future, n = pending.popleft()
    values = future.result()
    if len(values) != n:
        raise ValueError(f"a batch of {n} rows came back with {len(values)} scores")
    writer.write(values)
    bar.update(n)
