"""KernelDensity's ``bandwidth`` parameter as the bandwidth matrix H on the training data: numbers,
per-feature arrays and matrices checked, the rules dispatched (``_bandwidth``, ``_bandwidth_isj``,
``_bandwidth_sj``, ``_bandwidth_plugin``, ``_bandwidth_lscv``), and the scalar bandwidths of the
non-euclidean metrics."""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

from .._backend import to_host_numpy
from . import _bandwidth
from ._bandwidth_isj import isj_bandwidth
from ._bandwidth_lscv import CV_MATRIX_RULES, cv_bandwidth_matrix
from ._bandwidth_plugin import plugin_bandwidth_matrix
from ._bandwidth_sj import sj_bandwidth
from ._kernels import kernel_coordinate_variance
from ._weights import equal_weights

RULES = ("scott", "silverman", "isj", "cv", "sj", "plugin") + CV_MATRIX_RULES
_RULES = RULES  # the name the messages below use

def _squared_bandwidth(h):
    """h² (float or per-feature array) as the bandwidth matrix's diagonal; refuses an h whose
    square leaves float64's normal range (h beyond about 1.3e154 overflows, below about 1.5e-154
    underflows), where the matrix would be inf or lose its digits."""
    if np.ndim(h) == 0:  # Python floats: no errstate needed (a product overflows to inf quietly)
        squared = float(h) * float(h)
        ok = math.isfinite(squared) and squared >= sys.float_info.min
    else:
        with np.errstate(over="ignore", under="ignore"):
            squared = np.asarray(h, dtype=np.float64) ** 2
        ok = bool(np.all(np.isfinite(squared)) and np.all(squared >= np.finfo(np.float64).tiny))
    if not ok:
        raise ValueError(
            f"bandwidth {h!r} is outside the range whose square float64 holds (about 1.5e-154 to "
            "1.3e154); rescale the data"
        )
    return squared


def bandwidth_matrix(est, X, weights):
    """(bandwidth_, H) for the ``bandwidth`` parameter on data X."""
    n, d = X.shape
    bw = est.bandwidth
    if est._metric_spec(d)[0] != "euclidean":
        return metric_bandwidth(est, X, weights)
    if isinstance(bw, str):
        if bw not in _RULES:
            raise ValueError(f"bandwidth must be a positive number, an array or one of {_RULES}; got {bw!r}")

        X64 = np.asarray(X, dtype=np.float64)
        if bw in ("scott", "silverman"):
            H = _bandwidth.rule_bandwidth_matrix(X64, weights, bw, est.kernel)
        elif bw in ("isj", "sj"):
            if d != 1:
                raise ValueError(
                    f'bandwidth="{bw}" is for 1-D data; X has {d} features. Use "scott", '
                    '"silverman" or "cv"'
                )
            sigma = (isj_bandwidth if bw == "isj" else sj_bandwidth)(X64[:, 0], weights)
            H = np.array([[sigma**2 / kernel_coordinate_variance(est.kernel, 1)]])
        elif bw == "plugin" or bw in CV_MATRIX_RULES:  # the gaussian kernel's covariance, converted
            H = plugin_bandwidth_matrix(X64, weights) if bw == "plugin" else cv_bandwidth_matrix(X64, weights, bw)
            H = H / kernel_coordinate_variance(est.kernel, d)
        else:  # cv
            H0 = _bandwidth.rule_bandwidth_matrix(X64, weights, "scott", est.kernel)
            X_white = _bandwidth.whiten(_bandwidth.cholesky_bandwidth(H0), X64)
            factor, _ = _bandwidth.cv_bandwidth_factor(X_white, weights, est.kernel)
            H = factor**2 * H0
        used = float(np.sqrt(H[0, 0])) if d == 1 else H
        return used, H
    if bw is None or isinstance(bw, bool):
        raise TypeError(
            f"bandwidth must be a positive number, a (d,) or (d, d) array, or one of {_RULES}; got {bw!r}"
        )
    if isinstance(bw, numbers.Real):
        if not (np.isfinite(bw) and bw > 0):
            raise ValueError(f"bandwidth must be positive and finite; got {bw!r}")
        return float(bw), np.eye(d) * _squared_bandwidth(bw)
    try:
        arr = np.array(to_host_numpy(bw), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"bandwidth must be a number, an array or a string; got {type(bw).__name__}") from None
    if arr.ndim == 0:
        if not (np.isfinite(arr) and arr > 0):
            raise ValueError(f"bandwidth must be positive and finite; got {bw!r}")
        return float(arr), np.eye(d) * _squared_bandwidth(arr)
    if not np.all(np.isfinite(arr)):
        raise ValueError("bandwidth array must be finite")
    if arr.shape == (d,):
        if not np.all(arr > 0):
            raise ValueError("per-feature bandwidths must all be positive")
        return arr, np.diag(_squared_bandwidth(arr))
    if arr.shape == (d, d):
        if not np.allclose(arr, arr.T, rtol=1e-10, atol=0):
            raise ValueError("the bandwidth matrix must be symmetric")
        return arr, arr
    raise ValueError(
        f"bandwidth array must have shape ({d},) for per-feature bandwidths or ({d}, {d}) for a "
        f"bandwidth matrix; got shape {arr.shape}"
    )


def metric_bandwidth(est, X, weights):
    """(bandwidth_, H = h² I) for a non-euclidean metric: a float h, or "scott"/"silverman" as a
    scalar, the rule's factor times the root mean of the per-feature (weighted) variances,
    divided by the kernel's coordinate standard deviation."""
    n, d = X.shape
    bw = est.bandwidth
    if isinstance(bw, str) and bw in ("scott", "silverman"):

        X64 = np.asarray(X, dtype=np.float64)
        _bandwidth._check_support(X64, None if equal_weights(weights) else weights)
        h = _bandwidth.scalar_rule_bandwidth(X64, weights, bw, est.kernel)
        return h, np.eye(d) * h**2
    if isinstance(bw, numbers.Real) and not isinstance(bw, bool):
        if not (np.isfinite(bw) and bw > 0):
            raise ValueError(f"bandwidth must be positive and finite; got {bw!r}")
        return float(bw), np.eye(d) * _squared_bandwidth(bw)
    raise ValueError(
        f"metric={est.metric!r} takes a scalar bandwidth: a positive float, 'scott' or "
        f"'silverman'; got {bw!r} (per-feature and matrix bandwidths, 'isj' and 'cv' are for the "
        "euclidean metric)"
    )
