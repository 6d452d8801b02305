"""Which engine sums a ``KernelDensity``'s kernels: the ``algorithm`` parameter and the cost model
behind ``algorithm="auto"``; the result is the fitted attribute ``effective_algorithm_``.

* "exact": the tiled brute-force engine (``_kde_cpu``, ``_kde_cuda``), every pair.
* "tree": the k-d tree of ``_tree_index``, on the CPU with the euclidean metric. For the compact
  kernels, an exact sum over the training points within the support only (``_pruned_cpu``),
  equal to the exact engine's to rounding. For the gaussian and exponential kernels with
  ``rtol`` or ``atol`` above 0, a sum within those tolerances, guaranteed (``_tree_bounds_cpu``);
  with both 0 nothing can be left out, and "tree" runs "exact".
* "auto" (and scikit-learn's "kd_tree" and "ball_tree", accepted for compatibility, which choose
  the same way): the cheaper of the two by the cost model of :func:`choose_auto`; "exact"
  wherever the tree does not apply (other metrics, GPU data, gaussian and exponential kernels
  with no tolerance).

A new engine (such as an FFT grid) adds its name to ``ENGINES`` and ``ALGORITHMS``, its
conditions to :func:`check_algorithm`, and its own cost estimate to :func:`choose_auto`.

The choice is made at ``fit`` (from the fitted model: n, d, the kernel, the tolerances and what
a few training points cost through the tree) and does not depend on the queries; the tree is
built there too. The pilot of ``adaptive=True`` runs a tree only for compact kernels (exact to
rounding): Abramson's factors do not depend on the tolerances.
"""

from __future__ import annotations

import numpy as np

from ._kernels import COMPACT_KERNELS

ENGINES = ("exact", "tree", "fft")
ALGORITHMS = ("auto", "exact", "tree", "kd_tree", "ball_tree", "fft")

# Cost model (units: one pair of the exact engine). Below TREE_MIN_N training points the exact
# engine is chosen without looking further: its sums are too short for a tree to pay. Otherwise
# PROBES training points (evenly spaced in tree order, a fixed choice: no random state) are run
# through the tree, and it is chosen when its cost per query, predicted from the points they
# scanned and the nodes they visited, is below TREE_FRACTION times the exact engine's n.
TREE_MIN_N = 2048
PROBES = 64
TREE_FRACTION = 0.7
# Measured at n = 10⁵, d = 2 on 2 cores (calibration runs of 2026-12-07, bandwidths 0.02 to 10):
# a compact kernel's walk costs about 250 pairs per tree level and 2.6 per point scanned (short
# leaf loops); a bounded walk about 150 per node visited (three exp, two box distances, a moment)
# and 1 per point scanned (the exact engine's tile sum over a node of up to TILE points).
SCAN_COST_COMPACT = 2.6
NODE_COST_COMPACT = 250.0
SCAN_COST_BOUNDED = 1.0
NODE_COST_BOUNDED = 150.0
HERMITE_COST_BOUNDED = 250.0  # a node's Hermite expansion tried (``_tree_hermite``, d ≤ 2)
EXACT_COST_F32 = 0.4  # a float32 pair of the exact engine (the bounded walk runs in float64)


MAX_GRID_DIMS = 3  # the FFT grid's dimensions at most (its size grows as nodes^d)


def check_grid_model(est, d, what):
    """Refuse, before any work, a model the grid does not compute: d > 3, a non-euclidean metric,
    adaptive bandwidths."""
    if d > MAX_GRID_DIMS:
        raise ValueError(f"{what} works for data with at most {MAX_GRID_DIMS} features; the data have {d}")
    metric = est._metric_spec(d)[0]
    if metric != "euclidean":
        raise ValueError(f"{what} needs the euclidean metric; got metric={est.metric!r}")
    if est.adaptive:
        raise ValueError(f"{what} needs a fixed bandwidth; got adaptive=True (use algorithm='exact')")


def _tolerant(est) -> bool:
    return est.rtol > 0 or est.atol > 0


def check_algorithm(est, engine, metric, d):
    """Refuse ``algorithm="tree"`` or ``"fft"`` where it does not run (before any work starts)."""
    if est.algorithm == "fft":
        check_grid_model(est, d, "algorithm='fft'")
        return
    if est.algorithm != "tree":
        return
    if "tree" not in getattr(engine, "ALGORITHMS", ("exact",)):
        raise ValueError(
            f"algorithm='tree' runs on the CPU; the {engine.name} engine runs 'exact' (pass "
            "algorithm='auto' or 'exact')"
        )
    if metric != "euclidean":
        raise ValueError(
            f"algorithm='tree' needs the euclidean metric; got metric={est.metric!r} (pass "
            "algorithm='auto' or 'exact')"
        )


def _tree_applies(est, engine, metric, pilot) -> bool:
    if "tree" not in getattr(engine, "ALGORITHMS", ("exact",)) or metric != "euclidean":
        return False
    if est.kernel in COMPACT_KERNELS:
        return True
    return _tolerant(est) and not pilot


def index_dtype(est, dtype):
    """The dtype of the tree a query of working ``dtype`` runs on: its own for compact kernels
    (the exact engine's values), float64 for the bounded sums (whose guarantee is in float64)."""
    return dtype if est.kernel in COMPACT_KERNELS else np.float64


def resolve_algorithm(est, engine, metric, pilot=False) -> str:
    """The engine ``est`` (fitted up to its state) runs, "exact" or "tree"; builds the tree of a
    "tree" choice (for the training data's dtype) so that scoring finds it. ``pilot``: for the
    fixed-bandwidth pilot of adaptive bandwidths."""
    if est.algorithm == "fft":  # the grid is built on first scoring (_fft_score)
        return "fft"
    if est.algorithm == "exact" or not _tree_applies(est, engine, metric, pilot):
        return "exact"
    dtype = index_dtype(est, np.float32 if est.training_data_.dtype == np.float32 else np.float64)
    if est.algorithm == "tree":
        engine.tree_index(est, dtype)
        return "tree"
    return choose_auto(est, engine, dtype)


def choose_auto(est, engine, dtype) -> str:
    """"tree" when its predicted cost per query is below the exact engine's, else "exact"."""
    if est.training_data_.shape[0] < TREE_MIN_N:
        return "exact"
    index = engine.tree_index(est, dtype)
    n_kept = index.train_t.shape[1]
    probes = np.linspace(0, n_kept - 1, min(PROBES, n_kept)).astype(np.int64)
    queries = np.ascontiguousarray(index.train_t[:, probes].T)
    if est.kernel in COMPACT_KERNELS:
        from ._pruned_cpu import kde_logsum_pruned

        _, scanned = kde_logsum_pruned(queries, index, est.kernel, serial=True, return_scanned=True)
        cost = SCAN_COST_COMPACT * float(np.mean(scanned)) + NODE_COST_COMPACT * (index.depth + 1)
    else:
        from ._tree_bounds_cpu import kde_logsum_bounded

        _, counts = kde_logsum_bounded(queries, index, est.kernel, est.rtol,
                                       _atol_s(engine, est, index), serial=True, return_counts=True)
        cost = (SCAN_COST_BOUNDED * float(np.mean(counts[:, 1]))
                + NODE_COST_BOUNDED * float(np.mean(counts[:, 0]))
                + HERMITE_COST_BOUNDED * float(np.mean(counts[:, 2])))
    exact_cost = n_kept * (EXACT_COST_F32 if est.training_data_.dtype == np.float32
                           and dtype == np.float64 else 1.0)
    # (an FFT engine's estimate goes here: the cheapest of the candidates wins)
    if cost < TREE_FRACTION * exact_cost:
        return "tree"
    engine.drop_tree_index(est, dtype)
    return "exact"


def _atol_s(engine, est, index):
    from ._tree_bounds_cpu import atol_in_sum_units

    log_norm = engine.state(est, index.train_t.dtype)[4]
    return atol_in_sum_units(est.atol, log_norm, index.shift)


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
