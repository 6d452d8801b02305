"""The metrics ``KernelDensity`` takes besides the euclidean one: their names and aliases (those
of scikit-learn's KDTree and BallTree), the ``metric_params`` each takes, and the check that turns
them into what the metric engine (``_kde_metric_cpu``) and the sampler need."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._backend import to_host_numpy

# scikit-learn's KernelDensity metrics (its KDTree and BallTree metrics) but "pyfunc"; the aliases
# name the same distance.
METRIC_ALIASES = {"l2": "euclidean", "cityblock": "manhattan", "l1": "manhattan",
                   "infinity": "chebyshev", "p": "minkowski", "sokalmichener": "rogerstanimoto"}
VALID_METRICS = (
    "euclidean", "l2", "minkowski", "p", "manhattan", "cityblock", "l1", "chebyshev", "infinity",
    "seuclidean", "mahalanobis", "haversine", "hamming", "canberra", "braycurtis", "jaccard", "dice",
    "rogerstanimoto", "russellrao", "sokalmichener", "sokalsneath",
)
# metric_params each metric takes (scikit-learn's DistanceMetric arguments).
METRIC_PARAMS = {"minkowski": ("p", "w"), "seuclidean": ("V",), "mahalanobis": ("V", "VI")}
# Metrics under which ``sample`` can draw from the kernel: those of a norm (see ``sample``).
SAMPLEABLE_METRICS = ("euclidean", "manhattan", "chebyshev", "minkowski", "seuclidean", "mahalanobis")


def metric_spec(metric, metric_params, d):
    """(name, p, vec, mat) of the metric for d features, its parameters checked; name is
    "euclidean" for the euclidean fast path (also minkowski with p = 2 and no weights)."""
    name = METRIC_ALIASES.get(metric, metric)
    params = metric_params or {}
    p, vec, mat = 2.0, None, None
    if name == "minkowski":
        p = params.get("p", 2)
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not p > 0:
            raise ValueError(f"metric_params['p'] of the minkowski metric must be a number > 0; got {p!r}")
        p = float(p)
        if params.get("w") is not None:
            vec = check_metric_array(params["w"], (d,), "minkowski metric_params['w']", positive=False)
            if math.isinf(p):
                raise ValueError("the weighted minkowski metric needs a finite p; got p=inf")
        elif p == 2.0:
            name = "euclidean"
        elif p == 1.0:
            name = "manhattan"
        elif math.isinf(p):
            name = "chebyshev"
    elif name == "seuclidean":
        if "V" not in params:
            raise ValueError("metric='seuclidean' needs metric_params={'V': V}, the (d,) variances")
        vec = check_metric_array(params["V"], (d,), "seuclidean metric_params['V']", positive=True)
    elif name == "mahalanobis":
        if ("V" in params) == ("VI" in params):
            raise ValueError("metric='mahalanobis' needs metric_params {'VI': VI} or {'V': V} (one of them)")
        if "VI" in params:
            mat = check_metric_array(params["VI"], (d, d), "mahalanobis metric_params['VI']")
        else:
            V = check_metric_array(params["V"], (d, d), "mahalanobis metric_params['V']")
            try:
                mat = np.linalg.inv(V)  # as scikit-learn
            except np.linalg.LinAlgError:
                raise ValueError("mahalanobis metric_params['V'] is singular; pass VI") from None
        scale = float(np.max(np.abs(mat)))
        if (np.max(np.abs(mat - mat.T)) > 1e-10 * scale
                or np.linalg.eigvalsh(0.5 * (mat + mat.T))[0] < -1e-12 * scale):
            raise ValueError("mahalanobis VI must be symmetric positive semi-definite")
    elif name == "haversine" and d != 2:
        raise ValueError(f"metric='haversine' needs 2-D data (latitude, longitude) in radians; got {d} features")
    return name, p, vec, mat


def check_metric_array(value, shape, name, positive=None):
    """A metric parameter as a finite float64 array of ``shape``; ``positive``: True for > 0,
    False for >= 0, None for any sign."""
    try:
        arr = np.array(to_host_numpy(value), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array of shape {shape}; got {value!r}") from None
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (one entry per feature); got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if positive is True and not np.all(arr > 0):
        raise ValueError(f"{name} must be positive")
    if positive is False and not np.all(arr >= 0):
        raise ValueError(f"{name} must be non-negative")
    return arr
