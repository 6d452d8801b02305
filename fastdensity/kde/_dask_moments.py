"""One pass over a dask array of training rows for ``KernelDensity``'s Dask engine: the checks, the
totals and the weighted moments the rules of thumb need, reduced in a balanced tree.

Every row block (a task on the worker that holds it) gives its row count, Σw, Σw², its weighted
mean and centred scatter M₂ = Σ w (x − x̄)(x − x̄)ᵀ, the column extremes (of all rows, and of the
rows of positive weight), its count of non-finite values and of bad weights; blocks merge two at a
time by Chan, Golub & LeVeque's pairwise update (1979; the means' difference, weighted, corrects
the scatters), which is as accurate as the two-pass sum about the global mean that
``_bandwidth.weighted_covariance`` computes in memory. Only these (d, d)-sized totals and one
(rows, Σw) pair per block come back.

:func:`rule_matrix` then applies ``_bandwidth.rule_bandwidth_matrix``'s rule (:func:`scalar_rule`: the scalar
rule of the other metrics) to them with the same
checks and messages: at least d + 1 points of positive weight, no constant feature, no collinear
features, variances float64 holds; Kish's effective size n_eff = (Σw)² / Σw².
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._backend._dask import one_column_chunk, tree_reduce
from . import _bandwidth
from ._kernels import kernel_coordinate_variance


@dataclasses.dataclass
class Moments:
    """The totals of some rows (one block, or several merged)."""

    rows: int
    positive: int  # rows of positive weight
    total: float  # Σ w
    total_sq: float  # Σ w²
    mean: np.ndarray | None  # (d,) weighted mean (None when total is 0 or not wanted)
    scatter: np.ndarray | None  # (d, d) Σ w (x − mean)(x − mean)ᵀ, or None when not wanted
    low: np.ndarray  # (d,) column minima over all rows
    high: np.ndarray
    low_pos: np.ndarray  # (d,) column minima over the rows of positive weight (+inf if none)
    high_pos: np.ndarray
    nan: int  # NaN values in X
    inf: int  # infinite values in X
    w_nan: int
    w_inf: int
    w_negative: int
    w_min: float
    w_max: float
    overflow: int  # rows whose whitened coordinates are not finite (when a factor was given)


def shard_blocks(X, w):
    """[(X block, w block or None)] as ``Delayed`` pairs over the non-empty row chunks of X (one
    column chunk); ``w`` a dask array with X's row chunks, or None."""
    X = one_column_chunk(X)
    xs = X.to_delayed()[:, 0]
    ws = [None] * len(xs) if w is None else list(w.to_delayed())
    return [(x, wb) for x, wb, rows in zip(xs, ws, X.chunks[0]) if rows > 0]


def block_moments(x, w, need_scatter, chol):
    """The :class:`Moments` of one block; ``chol`` (or None) the bandwidth's factor to count the
    rows whose whitened raw coordinates overflow (the CPU engine's check at fit)."""
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    finite = np.isfinite(x)
    nan = int(np.count_nonzero(np.isnan(x)))
    inf = int(x.size - np.count_nonzero(finite)) - nan
    if w is None:
        w = np.ones(n)
        w_bad = (0, 0, 0)
    else:
        w = np.asarray(w, dtype=np.float64)
        w_bad = (int(np.count_nonzero(np.isnan(w))), int(np.count_nonzero(np.isinf(w))), int(np.count_nonzero(w < 0)))
    pos = w > 0
    total = float(np.sum(w))
    mean = scatter = None
    with np.errstate(over="ignore", invalid="ignore"):
        if need_scatter and total > 0 and not (nan or inf or any(w_bad)):
            mean = (w @ x) / total
            xc = x - mean
            scatter = (xc.T * w) @ xc
        support = x[pos]
        low_pos = support.min(axis=0) if support.shape[0] else np.full(d, np.inf)
        high_pos = support.max(axis=0) if support.shape[0] else np.full(d, -np.inf)
        overflow = 0 if chol is None else block_overflow(x, chol)
    return Moments(n, int(np.count_nonzero(pos)), total, float(np.sum(w * w)), mean, scatter,
                   x.min(axis=0), x.max(axis=0), low_pos, high_pos, nan, inf, *w_bad,
                   float(w.min()), float(w.max()), overflow)


def block_overflow(x, chol):
    """Rows of the block whose whitened coordinates L⁻¹x overflow float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = _bandwidth.whiten(chol, np.asarray(x, dtype=np.float64))
    return int(np.count_nonzero(~np.all(np.isfinite(z), axis=1)))


def merge(a, b):
    """The :class:`Moments` of the rows of a and b (Chan et al.'s pairwise update of the scatter)."""
    total = a.total + b.total
    if a.mean is None or b.mean is None:  # a side without weight (or scatter not wanted)
        keep = b if a.mean is None and a.total == 0 else a
        mean, scatter = keep.mean, keep.scatter
    else:
        delta = b.mean - a.mean
        mean = a.mean + delta * (b.total / total)
        scatter = a.scatter + b.scatter + np.outer(delta, delta) * (a.total * b.total / total)
    return Moments(
        a.rows + b.rows, a.positive + b.positive, total, a.total_sq + b.total_sq, mean, scatter,
        np.minimum(a.low, b.low), np.maximum(a.high, b.high),
        np.minimum(a.low_pos, b.low_pos), np.maximum(a.high_pos, b.high_pos),
        a.nan + b.nan, a.inf + b.inf, a.w_nan + b.w_nan, a.w_inf + b.w_inf, a.w_negative + b.w_negative,
        min(a.w_min, b.w_min), max(a.w_max, b.w_max), a.overflow + b.overflow,
    )


def _rows_and_total(m):
    return m.rows, m.total


def data_moments(blocks, need_scatter, chol=None):
    """(the merged :class:`Moments`, [(rows, Σw)] per block) in one ``compute``, after which the
    data and weights are checked with the host messages (``validate_data``, ``check_sample_weight``)."""
    import dask

    parts = [dask.delayed(block_moments)(x, w, need_scatter, chol) for x, w in blocks]
    moments, per_block = dask.compute(tree_reduce(parts, merge), [dask.delayed(_rows_and_total)(p) for p in parts])
    if moments.nan:
        raise ValueError(f"Input X contains NaN ({moments.nan} values).")
    if moments.inf:
        raise ValueError(f"Input X contains infinity or a value too large for dtype('float64') ({moments.inf} values).")
    if moments.w_nan:
        raise ValueError("Input sample_weight contains NaN.")
    if moments.w_inf:
        raise ValueError("Input sample_weight contains infinity.")
    if moments.w_negative:
        raise ValueError("Negative values in data passed to `sample_weight`")
    if not moments.total > 0:
        raise ValueError("Sample weights must contain at least one non-zero number (sample_weight must have a positive sum)")
    return moments, per_block


def rule_matrix(m, rule, kernel, d):
    """H of the rule "scott" or "silverman" from the merged moments, as
    ``_bandwidth.rule_bandwidth_matrix`` computes it on the rows in memory."""
    if m.positive < d + 1:
        raise ValueError(
            f"a covariance-based bandwidth in {d} dimensions needs at least {d + 1} points with "
            f"positive weight; got {m.positive}. Pass a float bandwidth, or use fewer features"
        )
    cov = _covariance(m)
    # The in-memory check reads of the support rows only their column extremes: known here exactly.
    _bandwidth._check_covariance(cov, np.stack([m.low_pos, m.high_pos]))
    factor = _factor(m, rule, d)
    return cov * (factor * factor / kernel_coordinate_variance(kernel, d))


def scalar_rule(m, rule, kernel, d):
    """The scalar h of the rule for a non-euclidean metric from the merged moments, as
    ``_bandwidth.scalar_rule_bandwidth`` computes it in memory (after ``_check_support``)."""
    if m.positive < d + 1:
        raise ValueError(
            f"a covariance-based bandwidth in {d} dimensions needs at least {d + 1} points with "
            f"positive weight; got {m.positive}. Pass a float bandwidth, or use fewer features"
        )
    cov = _covariance(m)
    variance = float(np.mean(np.diag(cov)))
    if not (variance > 0 and np.isfinite(variance)):
        raise ValueError(
            "the data have no spread (every feature constant) or a spread that overflows float64, "
            "so a rule has nothing to scale; pass a float bandwidth (or rescale the data)"
        )
    return float(_factor(m, rule, d) * np.sqrt(variance / kernel_coordinate_variance(kernel, d)))


def _covariance(m):
    """``weighted_covariance``'s unbiased weighted covariance and its range check."""
    denom = m.total - m.total_sq / m.total
    if not denom > 0:
        raise ValueError("the covariance needs at least 2 points with positive weight; pass a float bandwidth")
    cov = m.scatter / denom
    # The in-memory check reads of the rows only which columns vary: known here exactly.
    _bandwidth._check_covariance_range(cov, (m.high - m.low)[None, :])
    return cov


def _factor(m, rule, d):
    neff = m.total * m.total / m.total_sq  # Kish's effective sample size
    return _bandwidth.scott_factor(neff, d) if rule == "scott" else _bandwidth.silverman_factor(neff, d)
