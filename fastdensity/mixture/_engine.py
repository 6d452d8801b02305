"""The Gaussian-mixture engine interface, and the choice of engine from the array type.

An engine owns the numbers of one backend for ``GaussianMixture``. The estimator (``_base.py``,
``_gaussian_mixture.py``) validates the data (NumPy, or CuPy for GPU data and ``backend="cuda"``),
asks :func:`engine_for` once per call for the engine of the validated data, keeps the parameters
as float64 NumPy arrays (they are (k, d, d)-sized; the M-step runs on the host for every backend)
and runs the same sequence whatever the backend:

- ``scope(X, n_jobs)``: the context the work runs in (the thread count on the CPU, the array's
  device on a GPU);
- ``compute_array(X)``: X as the engine's passes read it (float64 C order on the CPU; kept as
  given on a GPU, where float32 runs the float kernels);
- ``check_weights(est, sample_weight, X)``: validated float64 weights in ``xp``, or None;
- ``n_positive(w, n)``: the number of rows with a positive weight (n without weights);
- ``centre(X, w)``: (the weighted mean of the rows as a host (d,) float64 array, Σ w);
- ``initial_stats(est, X, w, random_state)``: the initial sufficient statistics (``Stats``) of
  ``est.init_params``, with the same draws from ``random_state`` on every backend;
- ``e_step(X, w, means, prec_chol, log_weights, cov_type, shift)``: the fused E-step,
  (Σ w log p(x) over the rows as a float, then R, Sx, Sxx as host float64 arrays): only totals
  leave the engine, so that a sharded engine (Dask) reduces where the rows are;
- ``weighted_log_prob(...)`` (n, k) and ``log_prob_norm(...)`` (n,): float64 results in ``xp``,
  −inf (not NaN) for rows whose distances overflow.

Results reach the caller through ``_arrays.to_caller``, which is the same for every backend.

Adding a backend: a module with an object of this shape and one line in :func:`engine_for`.
"""

from __future__ import annotations

from typing import Any, Protocol

from .._backend import array_kind


class MixtureEngine(Protocol):
    name: str

    @property
    def xp(self) -> Any: ...

    def scope(self, X, n_jobs): ...

    def compute_array(self, X): ...

    def check_weights(self, est, sample_weight, X): ...

    def n_positive(self, w, n: int) -> int: ...

    def centre(self, X, w) -> tuple: ...

    def initial_stats(self, est, X, w, random_state): ...

    def e_step(self, X, w, means, prec_chol, log_weights, cov_type, shift) -> tuple: ...

    def weighted_log_prob(self, X, means, prec_chol, cov_type, log_weights): ...

    def log_prob_norm(self, X, means, prec_chol, log_weights, cov_type): ...


def engine_for(array) -> MixtureEngine:
    """The mixture engine for data held as ``array`` (validated: NumPy, CuPy or, to fit, Dask)."""
    if array_kind(array).namespace == "dask":
        from ._engine_dask import DASK_ENGINE

        return DASK_ENGINE
    if array_kind(array).namespace == "cupy":
        from ._engine_cuda import CUDA_ENGINE

        return CUDA_ENGINE
    from ._engine_cpu import CPU_ENGINE

    return CPU_ENGINE
