"""The estimators' check of ``X`` on either backend: scikit-learn's ``validate_data`` on the host,
its device twin (``_device.check_device_X``) for CuPy arrays, so that GPU data never leaves the GPU."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data

from ._convert import to_device_cupy, to_host_numpy
from ._dispatch import resolve_backend
from ._namespace import common_kind


def check_estimator_X(estimator, X, *, reset, ensure_min_samples=1):
    """(validated X, the caller's ArrayKind, "cpu" or "cuda") for ``estimator.backend``.

    "cuda": X is a C-contiguous float32/float64 CuPy array on its own device; "cpu": a NumPy array of
    the same dtypes (torch/CuPy/array-API inputs copied to the host). ``reset`` and ``ensure_min_samples``
    as in ``validate_data``.
    """
    kind = common_kind(X)
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
