"""The ``bounds`` and ``boundary`` parameters of ``KernelDensity``: their checks and their parsed form.

``bounds`` is None (no bounds) or one entry per feature: None (that feature is unbounded) or a pair
``(low, high)``. Either end of a pair may be None or an infinity for a one-sided bound:
``(0, None)`` and ``(0, inf)`` both mean [0, ∞); ``(None, None)`` and ``(-inf, inf)`` mean
unbounded. The domain is the closed box of these intervals. A NumPy array of shape (d, 2) is a
valid ``bounds`` too (its rows are the pairs, ±inf for open ends).

Checks, each raising before any work starts: the structure (TypeError for what is not a sequence
of pairs of numbers, ValueError for NaN, a lower end of +inf, an upper end of -inf, or
low ≥ high) when the parameters are validated; the number of entries and the training data lying
inside the box when ``fit`` sees the data.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._backend._columns import column_extremes

BOUNDARY_METHODS = ("reflection",)


def _end(value, where, side):
    """One end of a pair as a float (None → ∓inf), checked."""
    if value is None:
        return -math.inf if side == "low" else math.inf
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where} must be a number, an infinity or None; got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{where} must be a number, an infinity or None; got nan")
    if side == "low" and value == math.inf:
        raise ValueError(f"{where} (a lower bound) cannot be +inf; use None or -inf for no lower bound")
    if side == "high" and value == -math.inf:
        raise ValueError(f"{where} (an upper bound) cannot be -inf; use None or inf for no upper bound")
    return value


def _entries(bounds):
    if isinstance(bounds, (str, bytes, dict)) or not hasattr(bounds, "__len__"):
        raise TypeError(
            "bounds must be None or a sequence with one entry per feature, each None or a pair "
            f"(low, high); got {type(bounds).__name__} {bounds!r}"
        )
    return list(bounds)


def parse_bounds(bounds):
    """(low, high): float64 (d,) arrays of the box, ±inf where a side is open; checks the
    structure of ``bounds`` (not yet the number of features). None for ``bounds=None``."""
    if bounds is None:
        return None
    entries = _entries(bounds)
    low, high = np.full(len(entries), -np.inf), np.full(len(entries), np.inf)
    for i, entry in enumerate(entries):
        if entry is None:
            continue
        if isinstance(entry, (str, bytes)) or not hasattr(entry, "__len__") or len(entry) != 2:
            raise TypeError(f"bounds[{i}] must be None or a pair (low, high); got {entry!r}")
        lo, hi = _end(entry[0], f"bounds[{i}][0]", "low"), _end(entry[1], f"bounds[{i}][1]", "high")
        if not lo < hi:
            raise ValueError(f"bounds[{i}] = ({entry[0]!r}, {entry[1]!r}) needs low < high; got low {lo!r} "
                             f">= high {hi!r}")
        low[i], high[i] = lo, hi
    return low, high


def check_bounds_param(bounds):
    """The ``_constraints`` check of ``bounds`` (structure only); returns the value unchanged."""
    parse_bounds(bounds)
    return bounds


def check_bounds_for_data(est, X):
    """(low, high) of ``est.bounds`` checked against the validated training data X (n, d): one
    entry per feature, every value inside the box, the euclidean metric. None without bounds."""
    parsed = parse_bounds(est.bounds)
    if parsed is None:
        return None
    low, high = parsed
    d = X.shape[1]
    if low.size != d:
        raise ValueError(f"bounds must have one entry per feature: X has {d} features; bounds has {low.size} "
                         f"entries ({est.bounds!r})")
    metric = est._metric_spec(d)[0]
    if metric != "euclidean":
        raise ValueError(
            f"bounds need the euclidean metric (the reflection is exact for it); got metric={est.metric!r}"
        )
    from .._backend._device import to_host

    x_min, x_max = (np.asarray(to_host(a), dtype=np.float64) for a in column_extremes(X))
    for i in map(int, np.flatnonzero((x_min < low) | (x_max > high))[:1]):  # the first feature outside
        low_i, high_i, min_i, max_i = float(low[i]), float(high[i]), float(x_min[i]), float(x_max[i])
        if min_i < low_i:
            raise ValueError(f"the training data lie outside bounds[{i}]: the lower bound is {low_i!r}, and "
                             f"X[:, {i}] has values down to {min_i!r}")
        raise ValueError(f"the training data lie outside bounds[{i}]: the upper bound is {high_i!r}, and "
                         f"X[:, {i}] has values up to {max_i!r}")
    return low, high
