"""Feature sets given as dask arrays (for :func:`kid` and :func:`prdc`): the checks that need no
computation, made before any task is built, and the in-memory partner of a dask set made lazy.

A dask array must be 2-D with known chunk sizes and a real numeric dtype; it is taken as float64
with one column chunk. Its values (finite) are checked by the tasks that read them. A NumPy
array (or torch CPU tensor) beside a dask array gets the in-memory checks and becomes a dask array
of ``ROWS`` rows per chunk; GPU arrays cannot be mixed with dask ones.
"""

from __future__ import annotations

import numpy as np

from .._backend._convert import to_host_numpy
from .._backend._dask import check_known_rows, one_column_chunk
from .._backend._namespace import _is_dask_array, array_kind
from ._fid import check_features

ROWS = 65536  # rows per chunk of an in-memory set beside a dask one


def any_dask(*arrays) -> bool:
    return any(_is_dask_array(a) for a in arrays)


def dask_features(x, name, min_samples=1):
    """``x`` as a float64 dask array with one column chunk, checked (2-D, known chunk sizes, real
    numbers, at least ``min_samples`` rows and one column) without computing anything."""
    import dask.array as da

    if not _is_dask_array(x):
        if array_kind(x).on_gpu:
            raise TypeError(f"{name} is a GPU array and the other feature set a dask array; pass both on one device")
        host = check_features(to_host_numpy(x) if array_kind(x).namespace != "numpy" else x, name, min_samples)
        return da.from_array(np.ascontiguousarray(host), chunks=(ROWS, -1))
    check_known_rows(x, name)
    if not isinstance(x._meta, np.ndarray):
        raise TypeError(f"{name}: dask arrays of features need NumPy chunks; got {type(x._meta).__name__} chunks")
    if x.dtype.kind == "c":
        raise TypeError("complex arrays are not supported; pass real-valued features")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"features must be numeric; got dtype {x.dtype}")
    n, d = x.shape
    if n < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} samples; got {n}")
    if d < 1:
        raise ValueError(f"{name} needs at least one feature; got shape {tuple(x.shape)}")
    return one_column_chunk(x.astype(np.float64))


# The in-memory check's words (``check_features``), for the tasks that meet a bad value.
FINITE_MESSAGE = "{name} contains NaN or infinite values"
