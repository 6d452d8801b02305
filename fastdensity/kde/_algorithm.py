"""Which engine sums a ``KernelDensity``'s kernels: the ``algorithm`` parameter and the cost model
behind ``algorithm="auto"``; the result is the fitted attribute ``effective_algorithm_``.

* "exact": the tiled brute-force engine (``_kde_cpu``, ``_kde_cuda``), every pair.
* "tree": the k-d tree of ``_tree_index``, on the CPU with the euclidean metric. For the compact
  kernels, an exact sum over the training points within the support only (``_pruned_cpu``),
  equal to the exact engine's to rounding. For the gaussian and exponential kernels with
  ``rtol`` or ``atol`` above 0, a sum within those tolerances, guaranteed (``_tree_bounds_cpu``);
  with both 0 nothing can be left out, and "tree" runs "exact".
* "fft": the binned FFT grid of ``_fft_score`` (d ≤ 3), interpolated with a stated bound.
* "auto" (and scikit-learn's "kd_tree" and "ball_tree", accepted for compatibility, which choose
  the same way between "exact" and "tree" only): the cheapest by the cost model of
  :func:`choose_auto`; "exact" wherever nothing else applies (other metrics, GPU data, gaussian
  and exponential kernels with no tolerance).

"auto" stays exact-equivalent by default: it considers "fft" only where the user asked for a
relative tolerance (``rtol`` above 0; the fft path then guarantees ``atol + rtol`` p, as the
bounded tree does; ``atol`` alone does not make "auto" consider "fft"), on the CPU, for d ≤ 3,
the euclidean metric, a fixed bandwidth, a kernel whose interpolation bound is O(δ²) (gaussian,
biweight, triweight: the others answer few queries from the grid in 2-D and 3-D at moderate
tolerances), and a scoring grid (``_fft_score``, within its budget of points) whose predicted
bound relative to the density of a smooth bulk (:func:`predicted_relative_bound`) is at most
rtol / 2, so that the grid answers the bulk of the queries. Its cost (:func:`fft_cost`) is the
grid's build amortised over a reference of n queries (the training set's size: the choice is
made at fit, without the queries) plus the interpolation per query.

The choice is made at ``fit`` (from the fitted model: n, d, the kernel, the tolerances and what
a few training points cost through the tree) and does not depend on the queries; the tree is
built there too. The pilot of ``adaptive=True`` runs a tree only for compact kernels (exact to
rounding): Abramson's factors do not depend on the tolerances.
"""

from __future__ import annotations

import numpy as np

from ._algorithm_tree import tree_logsum  # noqa: F401  (its home before; the CPU engine imports it there)
from ._fft_checks import MAX_GRID_DIMS, check_grid_model
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
# The fft grid (measured on 2 cores, 2026-12-07, gaussian, n = 2·10⁴ to 2·10⁵, d = 1 to 3, against
# the exact engine's float64 pair): building the two fields costs 0.22 to 0.41 pairs per
# N log2 N of the padded FFT (N up to 2^24) and about 1 per training point binned; a query's
# interpolation (2^d corners of two fields, the bound's test) 13 to 18 pairs in 1-D and 2-D.
FFT_COST_GRID = 0.5
FFT_COST_BIN = 2.0
FFT_COST_CORNER = 4.0
FFT_FRACTION = 0.7  # fft is chosen below this fraction of the best other engine's cost


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
    """The engine ``est`` (fitted up to its state) runs, "exact", "tree" or "fft"; builds the
    tree of a "tree" choice (for the training data's dtype) so that scoring finds it. ``pilot``:
    for the fixed-bandwidth pilot of adaptive bandwidths."""
    if est.algorithm == "fft":  # the grid is built on first scoring (_fft_score)
        return "fft"
    if est.algorithm == "exact":
        return "exact"
    fft = fft_cost(est, engine, metric, pilot) if est.algorithm == "auto" else None
    if not _tree_applies(est, engine, metric, pilot):
        n = est.training_data_.shape[0]
        return "fft" if fft is not None and fft < FFT_FRACTION * n else "exact"
    dtype = index_dtype(est, np.float32 if est.training_data_.dtype == np.float32 else np.float64)
    if est.algorithm == "tree":
        engine.tree_index(est, dtype)
        return "tree"
    return choose_auto(est, engine, dtype, fft)


def fft_applies(est, engine, metric, pilot=False) -> bool:
    """Whether "auto" may consider "fft" (see the module's docstring)."""
    from ._fft_bound import smooth_order

    d = est.n_features_in_
    return (not pilot and est.rtol > 0 and "fft" in getattr(engine, "ALGORITHMS", ("exact",))
            and metric == "euclidean"
            and d <= MAX_GRID_DIMS and not est.adaptive and smooth_order(est.kernel) == 2)


def predicted_relative_bound(kernel, d, D, curvature, points=4096):
    """∫ (β_D + β_2D) / ∫ K over the whitened space (radial integrals with weight r^(d−1)): the
    fft grid's error bound B = c ⊛ (β_D + β_2D) relative to the density c ⊛ K where the density
    is smooth on the bandwidth's scale (the bulk of the data)."""
    from ._fft_bound import cell_bound, profile, support_radius

    r = np.linspace(0.0, support_radius(kernel), points)
    weight = r ** (d - 1)
    beta = cell_bound(kernel, r, D, curvature) + cell_bound(kernel, r, 2.0 * D, curvature)
    return float(np.sum(beta * weight) / np.sum(profile(kernel, r) * weight))


def fft_cost(est, engine, metric, pilot=False):
    """The fft grid's predicted cost per query in exact-engine pairs (its build amortised over n
    queries, n the training set's size), or None where "auto" does not consider it."""
    if not fft_applies(est, engine, metric, pilot):
        return None
    import math

    from ._fft_score import plan_scoring_grid

    plan = plan_scoring_grid(est)
    if predicted_relative_bound(est.kernel, est.n_features_in_, plan["D"], plan["curvature"]) > 0.5 * est.rtol:
        return None
    n = est.training_data_.shape[0]
    N = math.prod(plan["padded"])
    build = FFT_COST_GRID * N * math.log2(max(N, 2)) + FFT_COST_BIN * n
    return build / n + FFT_COST_CORNER * 2 ** est.n_features_in_


def choose_auto(est, engine, dtype, fft=None) -> str:
    """The cheapest by predicted cost per query: "tree", "exact" or (where ``fft``, its cost from
    :func:`fft_cost`, is given) "fft"."""
    n = est.training_data_.shape[0]
    if n < TREE_MIN_N:
        return "fft" if fft is not None and fft < FFT_FRACTION * n else "exact"
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
    tree = cost < TREE_FRACTION * exact_cost
    if fft is not None and fft < FFT_FRACTION * (cost if tree else exact_cost):
        engine.drop_tree_index(est, dtype)
        return "fft"
    if tree:
        return "tree"
    engine.drop_tree_index(est, dtype)
    return "exact"


def _atol_s(engine, est, index):
    from ._tree_bounds_cpu import atol_in_sum_units

    log_norm = engine.state(est, index.train_t.dtype)[4]
    return atol_in_sum_units(est.atol, log_norm, index.shift)
