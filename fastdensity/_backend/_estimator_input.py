"""The estimators' check of ``X`` on either backend: scikit-learn's ``validate_data`` on the host,
its device twin (``_device.check_device_X``) for CuPy arrays, so that GPU data never leaves the GPU."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data

from ._convert import to_device_cupy, to_host_numpy
from ._dispatch import resolve_backend
from ._namespace import common_kind


def check_estimator_X(estimator, X, *, reset, ensure_min_samples=1, allow_dask=False):
    """(validated X, the caller's ArrayKind, "cpu", "cuda" or "dask") for ``estimator.backend``.

    ``allow_dask``: a dask array (NumPy chunks) is checked without computing (``check_dask_X``)
    and kept lazy, for an estimator with a Dask engine; otherwise it is refused.

    "cuda": X is a C-contiguous float32/float64 CuPy array on its own device; "cpu": a NumPy array of
    the same dtypes (torch/CuPy/array-API inputs copied to the host). ``reset`` and ``ensure_min_samples``
    as in ``validate_data``.
    """
    kind = common_kind(X)
    if allow_dask and kind.namespace == "dask":
        return check_dask_X(estimator, X, reset=reset, ensure_min_samples=ensure_min_samples), kind, "dask"
    backend = resolve_backend(estimator.backend, kind)
    if backend == "cuda":
        from ._device import check_device_X

        X = to_device_cupy(X)
        with X.device:
            X = check_device_X(estimator, X, reset=reset)
        if X.shape[0] < ensure_min_samples:
            raise ValueError(f"Found array with {X.shape[0]} sample(s) (shape={X.shape}) while a minimum of "
                             f"{ensure_min_samples} is required by {type(estimator).__name__}.")
        return X, kind, backend
    return check_host_X(estimator, X, kind, reset=reset, ensure_min_samples=ensure_min_samples), kind, backend


def check_host_X(estimator, X, kind, *, reset, ensure_min_samples=1):
    """The host half of :func:`check_estimator_X` for data of ``kind``: a C-contiguous float32/float64
    NumPy array (torch CPU tensors viewed, GPU arrays refused by ``to_host_numpy``)."""
    X = to_host_numpy(X) if kind.namespace != "numpy" else X
    return validate_data(estimator, X, reset=reset, dtype=[np.float64, np.float32], order="C",
                         ensure_min_samples=ensure_min_samples)


def check_dask_X(estimator, X, *, reset, ensure_min_samples=1):
    """A dask array of training rows, checked without computing anything: 2-D, known chunk sizes,
    NumPy chunks of a real dtype (float32 kept, other types as float64), the fit's number of
    features, at least ``ensure_min_samples`` rows. Finiteness is checked by the engine's first
    pass over the data."""
    from sklearn.utils.validation import _check_feature_names, _check_n_features

    name = type(estimator).__name__
    if getattr(estimator, "backend", "auto") == "cuda":
        raise TypeError(f"{name}: backend='cuda' with a dask array is not supported; use backend='auto' or 'cpu'")
    if not isinstance(X._meta, np.ndarray):
        raise TypeError(f"{name}: fitting on a dask array needs NumPy chunks; got {type(X._meta).__name__} chunks")
    if X.ndim != 2:
        raise ValueError(f"{name}: X must be a 2-D dask array (rows, features); got shape {X.shape}")
    if not np.isfinite(X.shape[1]) or any(not np.isfinite(c) for c in X.chunks[0]):
        raise ValueError(f"{name}: the dask array's chunk sizes are unknown (shape {X.shape}); call X.compute_chunk_sizes() first")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name}: X must hold numbers; got dtype {X.dtype}")
    if X.dtype != np.float32:
        X = X.astype(np.float64)
    if X.shape[0] < ensure_min_samples:
        raise ValueError(f"Found array with {X.shape[0]} sample(s) (shape={X.shape}) while a minimum of "
                         f"{ensure_min_samples} is required by {name}.")
    _check_feature_names(estimator, X, reset=reset)
    _check_n_features(estimator, X, reset=reset)
    return X

