"""``fastdensity fit gmm --batch-size N``: the fit streamed through Dask in row batches of a .npy
file, so that memory is bounded by the batches in flight, not by the file.

Each batch is a task that memory-maps the file and reads its rows (the file's path travels, not
its data), so the same graph runs on the local threads, on a ``--workers N`` local cluster or on
an existing ``--scheduler ADDRESS`` whose workers see the same path.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np


def _require_dask(option):
    try:
        import dask  # noqa: F401
        import dask.array  # noqa: F401
    except ImportError:
        raise ValueError(f"{option} needs Dask: pip install 'fastdensity[dask]'") from None


def _npy_rows(path, start, stop):
    return np.asarray(np.load(path, mmap_mode="r")[start:stop])


def npy_as_dask(path, batch_size, *, what="DATA"):
    """The rows of the 2-D (or 1-D: one column) .npy file ``path`` as a dask array of
    ``batch_size``-row chunks, each read from the file by its own task."""
    import dask
    import dask.array as da

    if os.path.splitext(os.fspath(path))[1].lower() != ".npy":
        raise ValueError(f"streaming reads .npy files (memory-mapped); {what} {os.fspath(path)!r} is not one")
    header = np.load(path, mmap_mode="r")
    if header.dtype.kind not in "biuf" or header.ndim not in (1, 2):
        raise ValueError(f"{what} {os.fspath(path)!r} must be a 1-D or 2-D numeric array; got {header.dtype} {header.shape}")
    n = header.shape[0]
    shape_tail = header.shape[1:]
    load = dask.delayed(_npy_rows, pure=True)
    parts = [da.from_delayed(load(os.fspath(path), s, min(s + batch_size, n)), shape=(min(s + batch_size, n) - s,) + shape_tail,
                             dtype=header.dtype) for s in range(0, n, batch_size)]
    if not parts:
        raise ValueError(f"{what} {os.fspath(path)!r} has no rows")
    lazy = da.concatenate(parts, axis=0)
    return lazy if lazy.ndim == 2 else lazy[:, None]


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
    """Fit ``estimator`` (a GaussianMixture) on the .npy ``data_path`` in ``batch_size``-row batches;
    returns the number of rows and features."""
    _require_dask("--batch-size")
    X = npy_as_dask(data_path, batch_size)
    w = None
    if weights_path is not None:
        w = npy_as_dask(weights_path, batch_size, what="weights file")
        if w.shape[1] != 1 or w.shape[0] != X.shape[0]:
            raise ValueError(f"weights file {os.fspath(weights_path)!r} must hold one value per row of DATA "
                             f"({X.shape[0]}); got shape {w.shape}")
        w = w[:, 0]
    with scheduler(address, workers):
        estimator.fit(X, sample_weight=w)
    return X.shape
