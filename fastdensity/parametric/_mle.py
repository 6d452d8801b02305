"""Maximum-likelihood solvers for the distributions without a closed form: the gamma shape and
the two beta shapes. Pure functions of the sufficient statistics; no estimator state.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import betaln, digamma, polygamma
from sklearn.exceptions import ConvergenceWarning

# Above this argument, log(k) − ψ(k) and its derivative come from the asymptotic series, which
# avoids the cancellation of two nearly equal numbers; the first omitted term is below 1e-16
# relative there. Series: ψ(k) ~ log k − 1/(2k) − Σ B_2j / (2j k^2j) (Abramowitz & Stegun 6.3.18).
_SERIES_FROM = 10.0
_BERNOULLI_TERMS = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12)  # B_2j / (2j)


def log_minus_digamma(k):
    """log(k) − ψ(k) for k > 0, accurate to rounding also for very large k."""
    k = np.asarray(k, dtype=np.float64)
    if np.ndim(k) == 0:
        return float(_log_minus_digamma_series(k) if k >= _SERIES_FROM else np.log(k) - digamma(k))
    return np.where(k >= _SERIES_FROM, _log_minus_digamma_series(k), np.log(k) - digamma(k))


def _log_minus_digamma_series(k):
    inv2 = 1.0 / (k * k)
    acc = 0.0
    for c in reversed(_BERNOULLI_TERMS):
        acc = c + inv2 * acc
    return 0.5 / k + inv2 * acc


def _log_minus_digamma_derivative(k):
    """d/dk [log k − ψ(k)] = 1/k − ψ'(k) (negative for every k > 0)."""
    if k < _SERIES_FROM:
        return 1.0 / k - float(polygamma(1, k))
    inv2 = 1.0 / (k * k)
    acc = 0.0
    for j, c in reversed(list(enumerate(_BERNOULLI_TERMS, start=1))):
        acc = -2 * j * c + inv2 * acc
    return -0.5 * inv2 + acc * inv2 / k


def gamma_statistic(x, w):
    """(μ, s) with μ = Σ w x and s = log μ − Σ w log x, for weights ``w`` that sum to one.

    s ≥ 0 is computed without cancellation. With m the rounded mean, r_i = (x_i − m)/m and
    ρ = Σ w r = (μ − m)/m (zero but for the rounding of m),
    s = log(μ/m) − Σ w log(x/m) = −Σ w (log(1 + r) − r) + (log(1 + ρ) − ρ),
    where log1p(r) − r ≈ −r²/2 keeps its relative accuracy for nearly constant data. The naive
    difference of two logarithms loses about log10(1/s) digits (all of them below s = 1e-16).
    """
    m = float(w @ x)
    r = (x - m) / m
    near = np.abs(r) < 0.5
    g = np.where(near, np.log1p(np.where(near, r, 0.0)) - r, np.log(np.where(near, 1.0, x / m)) - r)
    rho = float(w @ r)
    return m * (1.0 + rho), -float(w @ g) + (np.log1p(rho) - rho)


def gamma_shape_mle(s, *, tol=1e-14, max_iter=100):
    """Solve log(k) − ψ(k) = s (s > 0) for the gamma shape k.

    s = log(mean x) − mean(log x) ≥ 0 is the gamma's sufficient statistic. Minka's (2002,
    "Estimating a Gamma distribution") start and generalised Newton update,
    1/k ← 1/k + (f(k) − s) / (k² (1/k − ψ'(k))), safeguarded by the bracket
    1/(2s) < k < 1/s that follows from 1/(2k) < log k − ψ(k) < 1/k: a step that leaves the
    bracket is replaced by a geometric bisection, so the iteration cannot diverge.
    """
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"the gamma shape equation needs s > 0; got {s!r}")
    lo, hi = 0.5 / s, 1.0 / s
    k = (3.0 - s + np.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
    if not lo < k < hi:
        k = np.sqrt(lo * hi)
    for _ in range(max_iter):
        r = log_minus_digamma(k) - s
        if r == 0:
            return float(k)
        if r > 0:  # f decreasing: the root is above k
            lo = k
        else:
            hi = k
        inv_new = 1.0 / k + r / (k * k * _log_minus_digamma_derivative(k))
        k_new = 1.0 / inv_new if inv_new > 0 else np.inf
        if not lo < k_new < hi:
            k_new = np.sqrt(lo * hi)
        if abs(k_new - k) <= tol * k:
            return float(k_new)
        k = k_new
    warnings.warn(f"the gamma shape solver did not converge in {max_iter} iterations", ConvergenceWarning)
    return float(k)


def beta_log_likelihood(a, b, mean_log_x, mean_log_1mx):
    """Mean beta log-likelihood per sample from the sufficient statistics."""
    return (a - 1.0) * mean_log_x + (b - 1.0) * mean_log_1mx - betaln(a, b)


def beta_shapes_mle(mean_log_x, mean_log_1mx, start, *, tol=1e-13, max_iter=200):
    """Maximise the beta log-likelihood over shapes (a, b) > 0 by damped Newton.

    The mean log-likelihood (a−1) E[log x] + (b−1) E[log(1−x)] − log B(a, b) is strictly concave
    (log B is strictly convex), so Newton's direction always ascends; each step is halved until
    it stays in a, b > 0 and does not lower the likelihood, which makes the iteration globally
    convergent and quadratic near the optimum. Gradient: E[log x] − ψ(a) + ψ(a+b) (and b's);
    Hessian from trigamma ψ'.
    """
    theta = np.asarray(start, dtype=np.float64)
    stats = (mean_log_x, mean_log_1mx)
    value = beta_log_likelihood(*theta, *stats)
    for _ in range(max_iter):
        a, b = theta
        psi_ab = digamma(a + b)
        grad = np.array([mean_log_x - digamma(a) + psi_ab, mean_log_1mx - digamma(b) + psi_ab])
        tri_ab = float(polygamma(1, a + b))
        hess = np.array([[tri_ab - polygamma(1, a), tri_ab], [tri_ab, tri_ab - polygamma(1, b)]])
        step = -np.linalg.solve(hess, grad)
        t = 1.0
        while True:
            cand = theta + t * step
            if np.all(cand > 0):
                cand_value = beta_log_likelihood(*cand, *stats)
                if cand_value >= value - 1e-15 * abs(value):
                    break
            t *= 0.5
            if t < 1e-12:
                return theta  # no ascent left at rounding level: converged
        theta, value = cand, cand_value
        if np.all(np.abs(t * step) <= tol * theta):
            return theta
    warnings.warn(f"the beta shape solver did not converge in {max_iter} iterations", ConvergenceWarning)
    return theta
