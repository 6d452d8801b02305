"""The KDE engine interface, and the choice of engine from the array type.

An engine owns the numbers of one backend for ``KernelDensity``; the estimator validates the
parameters, asks :func:`engine_for` for the engine of the validated data once per call, and runs
the same sequence for every backend:

- ``scope(X, n_jobs)``: the context the work runs in (the thread count on the CPU, the array's
  device on a GPU);
- ``check_metric(est, metric, fitting)``: refuses a metric the engine does not run;
- ``fit_bandwidth(est, X, sample_weight) -> (sample_weight_, bandwidth_, H, pilot_weights, chol)``:
  the checked weights, the bandwidth (rules of thumb, "cv" and "isj" computed where the data are),
  the weights Abramson's adaptive factors are taken with, and H's Cholesky factor if the engine
  already computed it (else None: the estimator factors H once, on first use);
- ``state(est, dtype, device)``: the fitted state the sums run on (whitened training data
  (d, n) in ``dtype``, log weights, inverse adaptive scales, log normaliser), built once per dtype
  and device and cached in the estimator (``est._engine_cache``);
- ``log_density(est, X) -> (m,)`` float64 log densities of validated queries, in ``xp``;
- ``sample(est, n_samples, seed)``: draws in the training data's dtype, in ``xp``;
- ``to_caller(result, kind)``: a result in the caller's array type.

Adding a backend: a module with an object of this shape and one line in :func:`engine_for`.
"""

from __future__ import annotations

from .._backend import array_kind


def engine_for(array):
    """The KDE engine for data held as ``array`` (validated: NumPy, CuPy or dask)."""
    if array_kind(array).namespace == "dask":  # a training set that stays sharded
        from ._engine_dask import DASK_ENGINE

        return DASK_ENGINE
    if array_kind(array).namespace == "cupy":
        from ._engine_cuda import CUDA_ENGINE

        return CUDA_ENGINE
    from ._engine_cpu import CPU_ENGINE

    return CPU_ENGINE
