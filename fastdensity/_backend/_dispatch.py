"""The op table: each op name maps, per backend, to the import path of its implementation.

Implementations are imported on first use and cached, so that importing fastdensity compiles
nothing and imports no optional library (a CUDA launcher module imports CuPy only when called).
Later backends (Dask) add rows here.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from ._cuda import require_cupy
from ._namespace import SUPPORTED_CUDA, SUPPORTED_NOW, ArrayKind
from ._validation import Options, check_parameter

BACKENDS = ("auto", "cpu", "cuda")
_DASK_QUERIES = (
    " (A fitted estimator takes dask arrays of queries in score_samples, score, predict and "
    "predict_proba; GaussianMixture, KernelDensity and KNNDensity also fit on one; other estimators do not: pass X.compute() "
    "if it fits in memory)"
)

# op name -> {backend: "module:function"}
OPS: dict[str, dict[str, str]] = {
    "kde_logsum": {"cpu": "fastdensity.kde._kde_cpu:kde_logsum", "cuda": "fastdensity.kde._kde_cuda:kde_logsum"},
    "kde_loo_logsum_grid": {
        "cpu": "fastdensity.kde._kde_cv_cpu:kde_loo_logsum_grid",
        "cuda": "fastdensity.kde._kde_cuda:kde_loo_logsum_grid",
    },
    "gmm_estep": {
        "cpu": "fastdensity.mixture._mixture_cpu:gmm_estep",
        "cuda": "fastdensity.mixture._mixture_cuda:gmm_estep",
    },
    "gmm_log_prob": {
        "cpu": "fastdensity.mixture._mixture_cpu:gmm_log_prob",
        "cuda": "fastdensity.mixture._mixture_cuda:gmm_log_prob",
    },
    "gmm_log_prob_norm": {
        "cpu": "fastdensity.mixture._mixture_cpu:gmm_log_prob_norm",
        "cuda": "fastdensity.mixture._mixture_cuda:gmm_log_prob_norm",
    },
    "kmeans_plusplus": {"cpu": "fastdensity.mixture._kmeans_plusplus_cpu:kmeans_plusplus"},
    "knn_distances": {
        "cpu": "fastdensity.knn._knn_cpu:knn_distances",
        "cuda": "fastdensity.knn._knn_cuda:knn_distances",
    },
}


def validate_backend(backend) -> str:
    """Check the ``backend`` parameter of an estimator and return it."""
    return check_parameter("backend", backend, Options(BACKENDS))


def resolve_backend(backend: str, kind: ArrayKind) -> str:
    """Pick the concrete backend ("cpu" or "cuda") for data of ``kind``.

    "auto" follows the data: GPU arrays (CuPy, torch CUDA) run on "cuda", host arrays on "cpu".
    "cuda" needs CuPy and a GPU; without them it raises
    :class:`~fastdensity._backend._cuda.CudaUnavailableError` (an ``ImportError``) that says how to
    install CuPy or to choose backend="cpu". Raises an error naming what is supported when the
    combination cannot run here; a GPU array is never silently moved to the host.
    """
    validate_backend(backend)
    if backend == "auto":
        backend = "cuda" if kind.on_gpu else "cpu"
    if backend == "cpu":
        if kind.on_gpu:
            raise TypeError(
                f"backend='cpu' was asked for, but the data is a {kind.namespace} array on the GPU; "
                "GPU arrays are never copied to the host silently. Move the data to the host "
                "yourself (.cpu(), cupy.asnumpy) or use backend='auto'"
            )
        if kind.namespace == "dask":
            raise TypeError(f"Dask arrays are not supported yet; supported: {SUPPORTED_NOW}.{_DASK_QUERIES}")
        return "cpu"
    # backend == "cuda"
    if kind.namespace == "dask":
        raise TypeError(f"Dask arrays are not supported yet; supported with backend='cuda': {SUPPORTED_CUDA}.{_DASK_QUERIES}")
    if kind.on_gpu:
        require_cupy(f"the data is a {kind.namespace} array on the GPU, but backend='cuda'")
    else:
        require_cupy("backend='cuda'")
    return "cuda"


@lru_cache(maxsize=None)
def get_op(name: str, backend: str):
    """Return the implementation of op ``name`` on ``backend`` (imported on first use)."""
    try:
        row = OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {sorted(OPS)}") from None
    try:
        target = row[backend]
    except KeyError:
        raise NotImplementedError(
            f"op {name!r} has no {backend!r} implementation; available: {sorted(row)}"
        ) from None
    module_name, func_name = target.split(":")
    return getattr(importlib.import_module(module_name), func_name)
