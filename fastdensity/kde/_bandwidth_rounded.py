"""Rounded and tied 1-D data for the data-driven bandwidth rules ("isj", "sj"): the data's
resolution and the documented fallback.

Data recorded to a fixed step δ (Old Faithful's eruption times, to the second) sit on a lattice,
with ties. An estimate of the density's roughness at scales below δ sees the lattice's spikes, not
the density, and the plug-in equations then have spurious roots there: a bandwidth below the
rounding step resolves the rounding grid. The rules use the resolution in two ways:

* the root is searched for at bandwidths of at least δ only (``_bandwidth_isj``), or a root below δ
  is not accepted (``_bandwidth_sj``);
* when no acceptable root exists (truly discrete data, or a step δ as large as the optimal
  bandwidth), :func:`resolution_fallback` returns the normal-reference (Silverman) bandwidth of the
  data, never less than δ, with a ``UserWarning`` that says so.

The resolution δ of tied data is the median spacing of their distinct values (the rounding step for
rounded data); data without ties have no resolution here (their rules behave as before).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["tie_resolution", "resolution_fallback"]


def tie_resolution(x) -> float | None:
    """δ, the median spacing of the distinct values of the 1-D array ``x``, when ``x`` has ties
    (fewer distinct values than points) and at least 2 distinct values; None otherwise."""
    x = np.asarray(x, dtype=np.float64)
    distinct = np.unique(x)
    if distinct.size == x.size or distinct.size < 2:
        return None
    return float(np.median(np.diff(distinct)))


def _normal_reference(x, w) -> float:
    """Silverman's rule (n (d + 2) / 4)^(−1/5) σ in 1-D, as the "silverman" rule: σ the weighted
    standard deviation (unbiased, as ``weighted_covariance``), n the effective sample size."""
    W = float(np.sum(w))
    S2 = float(np.sum(w * w))
    mean = float(np.sum(w * x)) / W
    var = float(np.sum(w * (x - mean) ** 2)) / (W - S2 / W)
    neff = W * W / S2
    return (neff * 3.0 / 4.0) ** (-0.2) * math.sqrt(var)


def resolution_fallback(x, w, resolution: float, rule: str, reason: str) -> float:
    """The fallback bandwidth (the gaussian kernel's standard deviation) of the rules on rounded or
    tied data: max(Silverman's rule, δ), with a ``UserWarning`` naming ``rule`` and ``reason``.

    ``x`` (n,) are the values with positive weight ``w`` (n,); ``resolution`` is δ."""
    h = max(_normal_reference(x, w), resolution)
    warnings.warn(
        f'the "{rule}" bandwidth has no solution at or above the data\'s resolution '
        f"(δ = {resolution:.3g}, the median spacing of the distinct values of these tied data): "
        f"{reason}; using the fallback max(Silverman's rule, δ) = {h:.4g}",
        UserWarning,
        stacklevel=3,
    )
    return h
