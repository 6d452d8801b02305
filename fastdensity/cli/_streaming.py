"""``fastdensity fit gmm --batch-size N``: the fit streamed through Dask in row batches of a .npy,
.csv or Parquet file (``._batches``), so that memory is bounded by the batches in flight, not by
the file.

Each batch is a task that reads its rows from the file (a memory-mapped slice, a CSV byte range,
Parquet row groups; the file's path travels, not its data), so the same graph runs on the local
threads, on a ``--workers N`` local cluster or on an existing ``--scheduler ADDRESS`` whose
workers see the same path.
"""

from __future__ import annotations

import contextlib
import os


def _require_dask(option):
    try:
        import dask  # noqa: F401
        import dask.array  # noqa: F401
    except ImportError:
        raise ValueError(f"{option} needs Dask: pip install 'fastdensity[dask]'") from None


def rows_as_dask(path, batch_size, *, what="DATA"):
    """The rows of DATA (``.npy``, ``.csv``, Parquet; a 1-D ``.npy`` is one column) as a dask array
    of ``batch_size``-row chunks, each read from the file by its own task."""
    import dask
    import dask.array as da

    from ._batches import open_rows

    source = open_rows(path, what=what, batch_size=batch_size)
    parts = [da.from_delayed(dask.delayed(function, pure=True)(*arguments), shape=(n, source.n_features),
                             dtype=source.dtype) for function, arguments, n in source.parts(batch_size)]
    return da.concatenate(parts, axis=0)


@contextlib.contextmanager
def scheduler(address=None, workers=None):
    """Where the tasks run: an existing scheduler, a local cluster of ``workers`` processes, or
    this process's threads."""
    if address is not None or workers is not None:
        try:
            import distributed
        except ImportError:
            raise ValueError("--scheduler and --workers need dask.distributed: pip install 'fastdensity[dask]'") from None
        if address is not None:
            with distributed.Client(address) as client:
                yield client
        else:
            with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None,
                                          silence_logs=40) as cluster, distributed.Client(cluster) as client:
                yield client
        return
    import dask

    with dask.config.set(scheduler="threads"):
        yield None


def fit_streamed(estimator, data_path, weights_path, batch_size, address=None, workers=None):
    """Fit ``estimator`` (a GaussianMixture) on ``data_path`` in ``batch_size``-row batches;
    returns the number of rows and features."""
    _require_dask("--batch-size")
    X = rows_as_dask(data_path, batch_size)
    w = None
    if weights_path is not None:
        w = rows_as_dask(weights_path, batch_size, what="weights file")
        if w.shape[1] != 1 or w.shape[0] != X.shape[0]:
            raise ValueError(f"weights file {os.fspath(weights_path)!r} must hold one value per row of DATA "
                             f"({X.shape[0]}); got shape {w.shape}")
        w = w[:, 0]
    with scheduler(address, workers):
        estimator.fit(X, sample_weight=w)
    return X.shape
