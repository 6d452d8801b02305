"""Improved Sheather–Jones (Botev, Grotowski & Kroese 2010, "Kernel density estimation via
diffusion"), the 1-D data-driven bandwidth ``bandwidth="isj"``: the data binned linearly on a fine
grid, the roughness functionals from its DCT, and the fixed point of the ℓ-stage plug-in equation
found by root bracketing. Pure NumPy/SciPy. On rounded or tied data the root is searched for at
bandwidths of at least the data's resolution, with ``_bandwidth_rounded``'s documented fallback.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.fft import dct
from scipy.optimize import brentq

from .._backend._validation import check_sample_weight
from ._bandwidth_rounded import resolution_fallback, tie_resolution

__all__ = ["isj_bandwidth"]

ISJ_GRID_SIZE = 2**14
ISJ_PADDING = 0.1  # the binning grid spans the data range padded by this fraction on each side
_ISJ_ELL = 7  # the number of plug-in stages of Botev et al. (ℓ = 7 is their recommendation)
_ISJ_T_MAX = 0.1  # the largest t (in units of the padded range squared) searched for a root


def _linear_binning(u, w, m):
    """Weights of the points u ∈ (0, 1) shared linearly between the two nearest of the m cell
    centres (k + ½)/m; returns (m,) summing to Σw."""
    pos = u * m - 0.5
    left = np.clip(np.floor(pos).astype(np.int64), 0, m - 2)
    frac = pos - left
    hist = np.bincount(left, weights=w * (1.0 - frac), minlength=m)
    hist += np.bincount(left + 1, weights=w * frac, minlength=m)
    return hist


def _roughness(s, t, k2_powers, c2):
    """‖f_t^(s)‖²: the squared L² norm of the s-th derivative of the binned density on [0, 1]
    smoothed by a Gaussian of variance t (heat kernel with reflecting boundaries).

    With f(u) = 1 + Σ_k c_k cos(kπu) (c_k the DCT-II coefficients), smoothing multiplies c_k by
    exp(−k²π²t/2), differentiating s times by (kπ)^s, and ∫₀¹ cos² = ½ (Parseval).
    """
    k2 = k2_powers[1]
    return 0.5 * math.pi ** (2 * s) * float(np.sum(k2_powers[s] * c2 * np.exp(-(math.pi**2) * t * k2)))


def _isj_residual(t, neff, k2_powers, c2):
    """t − ξγ^[ℓ](t): the fixed-point equation of Botev et al. (2010), eq. (29)–(30).

    Starting from ‖f^(ℓ)‖² at time t, each stage s = ℓ−1, …, 2 picks the time t_s that is optimal
    for estimating ‖f^(s)‖² given ‖f^(s+1)‖² (their eq. (29)); the last stage gives the AMISE
    optimal time (2 n √π ‖f''‖²)^(−2/5).
    """
    # A roughness that underflows to 0 means an unbounded optimal time: "t is far too small".
    # That is signalled by −1 (t ≤ 0.1 here), finite so that Brent's method stays well defined.
    r = _roughness(_ISJ_ELL, t, k2_powers, c2)
    for s in range(_ISJ_ELL - 1, 1, -1):
        if not r > 0:
            return -1.0
        double_factorial = float(np.prod(np.arange(1, 2 * s, 2, dtype=np.float64)))
        gain = (1.0 + 0.5 ** (s + 0.5)) / 3.0
        t_s = (2.0 * gain * double_factorial / (math.sqrt(2.0 * math.pi) * neff * r)) ** (2.0 / (3 + 2 * s))
        r = _roughness(s, t_s, k2_powers, c2)
    if not r > 0:
        return -1.0
    return t - (2.0 * neff * math.sqrt(math.pi) * r) ** (-0.4)


def isj_bandwidth(x, weights=None) -> float:
    """Improved Sheather–Jones bandwidth (Botev, Grotowski & Kroese 2010, Ann. Stat. 38(5)) of
    1-D data: the standard deviation of the Gaussian kernel.

    The (weighted) data are binned linearly on 2**14 cells spanning the data range padded by 10%
    on each side, transformed by a DCT, and the fixed-point equation t = ξγ^[7](t) is solved by
    Brent's method for its smallest root above one cell width squared (searching up to t = 0.1
    of the padded range squared). n in the equations is the effective sample size 1/Σw² (the
    number of points for equal weights; Botev's code uses the number of distinct values).

    Rounded or tied data (fewer distinct values than points, resolution δ the median spacing of
    the distinct values): a first root below δ resolves the rounding grid, so the root is searched
    for again from bandwidth δ upwards; where there is none, ``_bandwidth_rounded``'s documented
    fallback max(Silverman's rule, δ) is returned with a ``UserWarning``.

    Raises ValueError for multi-dimensional data, fewer than 2 distinct values, or, for data
    without ties, when the equation has no root in the searched range or a root below the spacing
    of the values (suggesting "scott").
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        if x.shape[1] != 1:
            raise ValueError(
                f'bandwidth rule "isj" is for 1-D data only; got {x.shape[1]} features. '
                'Use "scott", "silverman" or "cv"'
            )
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"isj_bandwidth takes 1-D data; got shape {x.shape}")
    n = x.shape[0]
    if n == 0:
        raise ValueError("isj_bandwidth: the data are empty")
    if not np.all(np.isfinite(x)):
        raise ValueError("isj_bandwidth: the data contain NaN or infinite values")
    w = check_sample_weight(weights, n, xp=np, name="weights")
    if w is None:
        w = np.full(n, 1.0 / n)
        neff = float(n)
    else:
        keep = w > 0
        x, w = x[keep], w[keep] / np.sum(w)
        neff = 1.0 / float(np.sum(w * w))
    lo, hi = float(np.min(x)), float(np.max(x))
    if not hi > lo:
        raise ValueError(
            'the "isj" bandwidth needs at least 2 distinct data values (with positive weight); '
            'use "scott" or pass a float bandwidth'
        )
    span = (hi - lo) * (1.0 + 2.0 * ISJ_PADDING)
    u = (x - (lo - ISJ_PADDING * (hi - lo))) / span
    m = ISJ_GRID_SIZE
    hist = _linear_binning(u, w, m)
    c = dct(hist, type=2)[1:]  # c_k = 2 Σ_j p_j cos(kπ u_j), k ≥ 1
    c2 = c * c
    k2 = np.arange(1, m, dtype=np.float64) ** 2
    k2_powers = {s: k2**s for s in range(1, _ISJ_ELL + 1)}

    def residual(t):
        return _isj_residual(t, neff, k2_powers, c2)

    t_min = (1.0 / m) ** 2
    resolution = tie_resolution(x)  # None for data without ties: the rule as before
    try:
        t_star = _scan_root(residual, t_min, skip_positive=False)
    except _NoRoot as exc:
        if resolution is None:
            raise ValueError(_NO_ROOT_MESSAGES[exc.args[0]]) from None
        t_star = None
    bandwidth = None if t_star is None else math.sqrt(t_star) * span
    if resolution is None:
        # On rounded or discrete data the equation has a root that puts a spike on each distinct
        # value: a bandwidth below the typical spacing of the distinct values is that root, not a
        # density estimate. Data without ties get here only in extreme cases: refuse.
        spacing = float(np.median(np.diff(np.unique(x))))
        if bandwidth < spacing:
            raise ValueError(
                f'the "isj" bandwidth ({bandwidth:.3g}) is below the median spacing of the distinct '
                f"data values ({spacing:.3g}): the data look rounded or discrete and ISJ resolves the "
                'rounding grid instead of the density; use "scott", "silverman", "cv" or pass a float bandwidth'
            )
        return bandwidth
    if bandwidth is not None and bandwidth >= resolution:
        return bandwidth
    # Tied (rounded) data whose first root resolves the rounding grid (Old Faithful's eruption
    # times, to the second): the density's root is the first one at a bandwidth of at least the
    # resolution δ; below δ the roughness estimates see the lattice's spikes (_bandwidth_rounded).
    try:
        t_star = _scan_root(residual, max(t_min, (resolution / span) ** 2), skip_positive=True)
    except _NoRoot:
        return resolution_fallback(x, w, resolution, "isj", "the fixed-point equation has no root above δ")
    return math.sqrt(t_star) * span


class _NoRoot(Exception):
    """The fixed-point equation has no root in the scanned range; args[0] says why."""


_NO_ROOT_MESSAGES = {
    "below": 'the "isj" fixed-point equation has its root below the binning resolution (the data '
             'look discrete, or a few extreme outliers stretch the range); use "scott" or pass a float bandwidth',
    "none": 'the "isj" fixed-point equation has no root in the searched range (too few data, '
            'or no structure to estimate); use "scott" or pass a float bandwidth',
}


def _scan_root(residual, t_start, skip_positive):
    """The first root of ``residual`` (negative below it, ≥ 0 above) at t ≥ ``t_start``: scan upwards
    by doubling t for a sign change, then refine by Brent's method. A residual ≥ 0 at ``t_start``
    raises ``_NoRoot("below")``, or with ``skip_positive`` the scan first moves past it; none up to
    t = 0.1 raises ``_NoRoot("none")``."""
    if t_start >= _ISJ_T_MAX:
        raise _NoRoot("none")
    t_lo = t_start
    r_lo = residual(t_lo)
    if r_lo >= 0:
        if not skip_positive:
            raise _NoRoot("below")
        while r_lo >= 0:
            if t_lo >= _ISJ_T_MAX:
                raise _NoRoot("none")
            t_lo = min(2.0 * t_lo, _ISJ_T_MAX)
            r_lo = residual(t_lo)
    while True:
        t_hi = min(2.0 * t_lo, _ISJ_T_MAX)
        r_hi = residual(t_hi)
        if r_hi >= 0:
            break
        if t_hi >= _ISJ_T_MAX:
            raise _NoRoot("none")
        t_lo = t_hi
    return brentq(residual, t_lo, t_hi, xtol=1e-14 * t_hi, rtol=1e-12, maxiter=200)
