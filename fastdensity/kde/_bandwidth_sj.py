"""Sheather–Jones bandwidth (Sheather & Jones 1991, JRSS B 53(3), 683–690), ``bandwidth="sj"``:
the algorithm of R's ``stats::bw.SJ`` (Venables & Ripley's code in R's ``bandwidths.c`` and
``bandwidths.R``), reimplemented so that it gives R's numbers.

The roughness functionals ψ₄ = ∫ f⁽⁴⁾ f and ψ₆ = ∫ f⁽⁶⁾ f are estimated from pair distances
binned as R bins them: the range × 1.01 cut into ``nb`` = 1000 cells of width d, each value put in
cell trunc(x / d) (C's truncation toward zero, so the cell at the origin is twice as wide), and
the pairs counted by the difference of their cells (the autocorrelation of the cell counts). Then

    ψ̂_r(g) = (2 Σ_k c_k φ⁽ʳ⁾(k d / g) + n φ⁽ʳ⁾(0)) / (n (n − 1) g^(r+1)),

the sum cut where (k d / g)² ≥ 1000, as R's ``DELMAX``. With the normal-scale pilots
a = 1.24 s n^(−1/7), b = 1.23 s n^(−1/9) (s = min(sd, IQR / 1.349)), TD = −ψ̂₆(b):

* "ste" (solve the equation, the default): the root of
  h = (1 / (2 √π n ψ̂₄(α₂ h^(5/7))))^(1/5),  α₂ = 1.357 (ψ̂₄(a) / TD)^(1/7),
  bracketed from [0.1 h_max, h_max], h_max = 1.144 s n^(−1/5), widened by factors 1.2 as R does,
  and solved by R's ``uniroot`` (Brent's zeroin, :func:`_zeroin`) with R's tolerance 0.1 × lower;
* "dpi" (direct plug-in): h = (1 / (2 √π n ψ̂₄((2.394 / (n TD))^(1/7))))^(1/5).

Weights (an extension; R's bw.SJ takes none): each pair counts w_i w_j, the n(n − 1) of the
estimator becomes (Σw)² − Σw² and n elsewhere Kish's effective size (Σw)² / Σw², the standard
deviation is the weighted one (as ``weighted_covariance``) and the quartiles interpolate the weighted
ranks (:func:`_weighted_quantiles`). Equal weights give exactly the unweighted result; scaling the
weights changes nothing; a zero weight drops its point. Integer weights are *not* repeated rows
(the effective size is Kish's, as for every rule here).

Deviations from R, where R stops with an error or resolves the rounding of tied data: when more than
half the data are tied, so that the IQR is 0, s is the standard deviation; tied data (resolution δ,
``_bandwidth_rounded``) whose root is below δ or not found get the first root at h ≥ δ instead
("ste": f scanned upwards from δ by factors 1.2), and where there is none ``_bandwidth_rounded``'s
fallback with a warning. Data without ties get R's value or R's error.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from .._backend._validation import check_sample_weight
from ._bandwidth_rounded import resolution_fallback, tie_resolution

__all__ = ["sj_bandwidth", "SJ_BINS"]

SJ_BINS = 1000  # R's default nb
_DELMAX = 1000.0  # R: pair terms stop where (k d / g)² reaches this
_SJ_METHODS = ("ste", "dpi")


class _NoSolution(Exception):
    """The equation cannot be solved on these data (R stops with this message)."""


# ------------------------------------------------------------------------------ functionals


def _pair_counts(x, w, nb):
    """(d, c): the cell width and c_k = Σ_{i<j, |cell_i − cell_j| = k} w_i w_j, k = 0 … nb − 1."""
    lo, hi = float(np.min(x)), float(np.max(x))
    d = (hi - lo) * 1.01 / nb
    scaled = x / d
    if np.max(np.abs(scaled)) < 2.0**52:
        cells = np.trunc(scaled)  # R: trunc(abs(x) / d) * sign(x), C's (int)(x / d)
    else:  # far from the origin relative to the range: R's int cast would overflow there
        cells = np.trunc((x - lo) / d)
    cells = (cells - cells.min()).astype(np.int64)
    mass = np.bincount(cells, weights=w, minlength=nb).astype(np.float64)
    lag = np.correlate(mass, mass, mode="full")[mass.size - 1 :]
    counts = np.zeros(nb)
    m = min(nb, lag.size)
    counts[:m] = lag[:m]
    counts[0] = 0.5 * (float(np.sum(mass * mass)) - float(np.sum(w * w)))  # distinct pairs only
    return d, counts


def _psi(order, g, d, counts, s2, pairs):
    """ψ̂₄ or ψ̂₆ at pilot bandwidth g (R's ``bw_phi4``/``bw_phi6`` with weights): s2 = Σw², pairs
    = (Σw)² − Σw² (n(n − 1) unweighted)."""
    k = np.arange(counts.size, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        delta = (k * d / g) ** 2
        stop = np.flatnonzero(~(delta < _DELMAX))
        end = int(stop[0]) if stop.size else counts.size
        delta, c = delta[:end], counts[:end]
        g = np.float64(g)  # IEEE arithmetic: a zero or underflowing g gives ±inf or NaN, not an error
        if order == 4:
            total = 2.0 * np.sum(np.exp(-delta / 2.0) * (delta * delta - 6.0 * delta + 3.0) * c) + 3.0 * s2
            return float(total / (pairs * g**5) / math.sqrt(2.0 * math.pi))
        term = np.exp(-delta / 2.0) * (delta * delta * delta - 15.0 * delta * delta + 45.0 * delta - 15.0)
        total = 2.0 * np.sum(term * c) - 15.0 * s2
        return float(total / (pairs * g**7) / math.sqrt(2.0 * math.pi))


def _fifth_root(v):
    """v^(1/5) as R computes it: NaN for a negative (or NaN) v."""
    return v**0.2 if v >= 0 else math.nan


def _ratio(a, b):
    """a / b in IEEE arithmetic (±inf or NaN where b is 0), as R divides."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b))


# ------------------------------------------------------------------------------- root finder


def _zeroin(f, ax, bx, fa, fb, tol, maxit=1000):
    """Brent's zeroin (Forsythe, Malcolm & Moler 1977), step for step as R's ``R_zeroin2`` behind
    ``uniroot``: the root of f in [ax, bx] to within 4 ε |x| + tol. Raises _NoSolution when f gives
    NaN (R stops there)."""
    eps = sys.float_info.epsilon
    a, b, c, fc = ax, bx, ax, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2.0 * eps * abs(b) + tol / 2.0
        new_step = (c - b) / 2.0
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:  # linear interpolation
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:  # inverse quadratic interpolation
                q, t1, t2 = fa / fc, fb / fc, fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2.0) and p < abs(prev_step * q / 2.0):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if math.isnan(fb):
            raise _NoSolution("the equation is undefined inside the search interval")
        fb = max(min(fb, sys.float_info.max), -sys.float_info.max)  # R: ±Inf → ±DBL_MAX
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b  # R returns its last iterate (with a convergence warning we do not repeat)


# ---------------------------------------------------------------------------------- inputs


def _weighted_quantiles(xs, ws, probs):
    """Quantiles of sorted values ``xs`` with weights ``ws``: point k sits at rank
    (Σ_{i≤k} w_i − (w_k + w_0) / 2) / (Σw − (w_0 + w_last) / 2) ∈ [0, 1] and the quantile
    interpolates linearly between ranks; equal weights give ranks k / (n − 1), R's type 7."""
    mid = np.cumsum(ws) - 0.5 * (ws + ws[0])
    ranks = mid / (float(np.sum(ws)) - 0.5 * (ws[0] + ws[-1]))
    return np.interp(probs, ranks, xs)


def _scale(x, w):
    """s = min(sd, IQR / 1.349) (R), or sd where the IQR is 0 (R stops there)."""
    W, S2 = float(np.sum(w)), float(np.sum(w * w))
    mean = float(np.sum(w * x)) / W
    sd = math.sqrt(float(np.sum(w * (x - mean) ** 2)) / (W - S2 / W))
    order = np.argsort(x, kind="stable")
    q1, q3 = _weighted_quantiles(x[order], w[order], [0.25, 0.75])
    iqr = (q3 - q1) / 1.349
    return min(sd, iqr) if iqr > 0 else sd


def _check_x(x, weights):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        if x.shape[1] != 1:
            raise ValueError(
                f'bandwidth rule "sj" is for 1-D data only; got {x.shape[1]} features. '
                'Use "scott", "silverman" or "cv"'
            )
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"sj_bandwidth takes 1-D data; got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("sj_bandwidth: the data are empty")
    if not np.all(np.isfinite(x)):
        raise ValueError("sj_bandwidth: the data contain NaN or infinite values")
    w = check_sample_weight(weights, x.shape[0], xp=np, name="weights")
    if w is None:
        return x, np.ones(x.shape[0])
    keep = w > 0
    return x[keep], w[keep] / float(np.max(w))  # scaled by the largest: equal weights are ones


# ----------------------------------------------------------------------------------- the rule


def _equation(x, w, nb, method):
    """(f, hmax): R's equation on (x, w) — f(h) = (c₁ / ψ̂₄(α₂ h^(5/7)))^(1/5) − h for "ste", the
    direct plug-in value for "dpi" — and h_max; raises _NoSolution with R's reason where R stops."""
    W, S2 = float(np.sum(w)), float(np.sum(w * w))
    n = W * W / S2  # the number of points for equal weights
    pairs = W * W - S2
    d, counts = _pair_counts(x, w, nb)
    scale = _scale(x, w)
    a = 1.24 * scale * n ** (-1.0 / 7.0)
    b = 1.23 * scale * n ** (-1.0 / 9.0)
    c1 = 1.0 / (2.0 * math.sqrt(math.pi) * n)

    def psi4(g):
        return _psi(4, g, d, counts, S2, pairs)

    td = -_psi(6, b, d, counts, S2, pairs)
    if not (math.isfinite(td) and td > 0):
        raise _NoSolution("the sample is too sparse to estimate ψ₆ (TD ≤ 0)")
    hmax = 1.144 * scale * n ** (-0.2)
    if method == "dpi":
        h = _fifth_root(_ratio(c1, psi4((2.394 / (n * td)) ** (1.0 / 7.0))))
        if not (math.isfinite(h) and h > 0):
            raise _NoSolution("the direct plug-in estimate of ψ₄ is not positive")
        return h, hmax
    ratio = _ratio(psi4(a), td)
    alph2 = 1.357 * ratio ** (1.0 / 7.0) if ratio >= 0 else math.nan
    if not math.isfinite(alph2):
        raise _NoSolution("the sample is too sparse to estimate α₂ (ψ₄ ≤ 0 at the pilot)")

    def f_sd(h):
        return _fifth_root(_ratio(c1, psi4(alph2 * h ** (5.0 / 7.0)))) - h

    return f_sd, hmax


def _solve(x, w, method, nb, tol):
    """R's bw.SJ on (x, w); raises _NoSolution with R's reason where R stops."""
    f_sd, hmax = _equation(x, w, nb, method)
    if method == "dpi":
        return f_sd
    lower, upper = 0.1 * hmax, hmax
    f_lo, f_hi = f_sd(lower), f_sd(upper)
    tries = 1
    while not (f_lo * f_hi <= 0):  # R: while (fSD(lower) * fSD(upper) > 0); NaN stops R
        if math.isnan(f_lo) or math.isnan(f_hi) or tries > 99:
            raise _NoSolution("no solution in the widened range of bandwidths")
        if tries % 2:
            upper *= 1.2
            f_hi = f_sd(upper)
        else:
            lower /= 1.2
            f_lo = f_sd(lower)
        tries += 1
    tol = 0.1 * lower if tol is None else float(tol)  # R's default, evaluated after the widening
    return _zeroin(f_sd, lower, upper, f_lo, f_hi, tol)


def _solve_above(x, w, nb, tol, floor):
    """The first root of the "ste" equation at h ≥ ``floor`` where f turns from positive to
    negative (a root of the density, not of the rounding grid): scanned upwards by factors 1.2 from
    ``floor`` to 100 h_max, refined by zeroin (tolerance 0.01 h_max, R's default, unless ``tol``)."""
    f_sd, hmax = _equation(x, w, nb, "ste")
    h, f = floor, f_sd(floor)
    seen_positive = f > 0
    while h < 100.0 * hmax:
        h_next = 1.2 * h
        f_next = f_sd(h_next)
        if math.isnan(f_next):
            break
        if seen_positive and f_next <= 0:
            return _zeroin(f_sd, h, h_next, f, f_next, 0.01 * hmax if tol is None else float(tol))
        seen_positive = seen_positive or f_next > 0
        h, f = h_next, f_next
    raise _NoSolution("the equation has no root above δ")


def sj_bandwidth(x, weights=None, *, method="ste", nb=SJ_BINS, tol=None) -> float:
    """The Sheather–Jones bandwidth of 1-D data, as R's ``bw.SJ(x, nb, method=method, tol=tol)``:
    the standard deviation of the gaussian kernel (the module docstring has the algorithm).

    Parameters
    ----------
    x : array of shape (n,) or (n, 1)
    weights : array of shape (n,) or None
        Non-negative weights (R's bw.SJ has none; see the module docstring).
    method : {"ste", "dpi"}
        Solve the equation (R's default) or the direct plug-in.
    nb : int
        The number of cells for the pair distances (R's default 1000).
    tol : float or None
        The root's absolute tolerance for "ste"; None is R's 0.1 × the lower end of the bracket
        (about 1% of the normal-reference bandwidth: R's "slightly more than one digit").

    Raises ValueError for multi-dimensional data, fewer than 2 distinct values, or untied data
    whose equation has no solution (R's errors). Tied data (rounded values) never raise there: a
    result below their resolution δ, or none, is replaced by the first root at h ≥ δ, or where there
    is none by ``resolution_fallback``'s bandwidth.
    """
    if method not in _SJ_METHODS:
        raise ValueError(f"method must be one of {_SJ_METHODS}; got {method!r}")
    if isinstance(nb, bool) or not isinstance(nb, (int, np.integer)) or nb < 2:
        raise ValueError(f"nb must be an integer ≥ 2; got {nb!r}")
    if tol is not None and not (isinstance(tol, (int, float, np.floating)) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive finite number or None; got {tol!r}")
    x, w = _check_x(x, weights)
    if x.size < 2 or float(np.min(x)) == float(np.max(x)):
        raise ValueError(
            'the "sj" bandwidth needs at least 2 distinct data values (with positive weight); '
            'use "scott" or pass a float bandwidth'
        )
    resolution = tie_resolution(x)
    try:
        h = _solve(x, w, method, int(nb), tol)
    except _NoSolution as exc:
        if resolution is None:
            raise ValueError(
                f'the "sj" bandwidth equation has no solution on these data: {exc}; use "scott", '
                '"silverman" or pass a float bandwidth'
            ) from None
        h, reason = None, str(exc)
    else:
        reason = f"its root {h:.3g} is below δ"
    if resolution is None or (h is not None and h >= resolution):
        return float(h)
    # Tied (rounded) data whose root resolves the rounding grid, or R's bracket found none: the
    # root of the density is the first one at h ≥ δ ("ste"); "dpi" has no other value to offer.
    if method == "ste":
        try:
            return float(_solve_above(x, w, int(nb), tol, resolution))
        except _NoSolution:
            reason += ", and there is no root at h ≥ δ"
    return resolution_fallback(x, w, resolution, "sj", reason)
