"""The tree engine's sum for a fitted ``KernelDensity`` whose ``effective_algorithm_`` is "tree"
(``_algorithm`` chooses it; the CPU engine calls this). Apart from ``_algorithm`` so that the
engine does not import the cost model, which imports the fft grid, which imports the engine."""

from __future__ import annotations

import numpy as np

from ._kernels import COMPACT_KERNELS


def tree_logsum(engine, est, queries, dtype, log_norm):
    """log Σ_j w_j k(...) (without the normaliser) of whitened float64 ``queries`` by the tree
    engine of ``est.kernel``, for a model whose working dtype is ``dtype``."""
    if est.kernel in COMPACT_KERNELS:
        from ._pruned_cpu import kde_logsum_pruned

        with np.errstate(over="ignore"):
            queries = np.ascontiguousarray(queries, dtype=dtype)  # float32: overflow to ±inf
        return kde_logsum_pruned(queries, engine.tree_index(est, dtype), est.kernel)
    from ._tree_bounds_cpu import atol_in_sum_units, kde_logsum_bounded

    index = engine.tree_index(est, np.float64)
    atol_s = atol_in_sum_units(est.atol, log_norm, index.shift)
    return kde_logsum_bounded(queries, index, est.kernel, est.rtol, atol_s)
