"""Device-side input checks shared by the estimators' GPU paths (CuPy arrays): scikit-learn's
``validate_data`` / sample-weight rules, applied without moving the data to the host."""

from __future__ import annotations

import sys

import numpy as np

from ._cuda import require_cupy


def is_device_array(x) -> bool:
    cupy = sys.modules.get("cupy")  # never import CuPy just to check
    return cupy is not None and isinstance(x, cupy.ndarray)


def to_host(x):
    """NumPy view or copy of ``x`` (a CuPy array is copied to the host; used for fitted state only)."""
    return x.get() if is_device_array(x) else x


def check_device_X(estimator, X, *, reset):
    """scikit-learn's ``validate_data`` checks for a CuPy array: 2-D, real, finite, non-empty,
    float32/float64 kept (other real types become float64), the fitted number of features."""
    cp = require_cupy("backend='cuda'")
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D array instead; reshape your data (e.g. X.reshape(-1, 1))")
    if X.dtype.kind == "c":
        raise ValueError("Complex data not supported")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must hold real numbers; got dtype {X.dtype}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    X = cp.ascontiguousarray(X)
    n, d = X.shape
    if n < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
    if d < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
    if not bool(cp.isfinite(X).all()):
        raise ValueError("Input X contains NaN or infinity.")
    if reset:
        estimator.n_features_in_ = d
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif d != estimator.n_features_in_:
        raise ValueError(
            f"X has {d} features, but {type(estimator).__name__} is expecting {estimator.n_features_in_} "
            "features as input."
        )
    return X
