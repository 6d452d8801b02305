"""Choosing bandwidths: rules of thumb and likelihood cross-validation (improved Sheather–Jones is
``_bandwidth_isj.py``); the bandwidth matrix's Cholesky factor, whitening and Abramson's factors.

Conventions. A rule gives the *kernel's covariance* C (for "scott"/"silverman": the weighted data
covariance times the rule's factor squared, as ``scipy.stats.gaussian_kde`` does). The estimator
uses a bandwidth matrix H = L Lᵀ that whitens the data for the unit-scale kernel profile, whose
draws have per-coordinate variance v = ``kernel_coordinate_variance(kernel, d)``; so H = C / v and
"scott" means the same amount of smoothing whatever the kernel (v = 1 for the gaussian).
scikit-learn's "scott"/"silverman" return the bare factor and ignore the data's scale (its issues
#25623, #26658); here the covariance is always included.

All functions are pure NumPy/SciPy apart from :func:`cv_bandwidth_factor`, which runs the Numba
engine ``_kde_cv_cpu.kde_loo_logsum_grid``. Errors name the problem and what to do instead.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.linalg import cholesky, solve_triangular

from .._backend._columns import column_extremes
from .._backend._validation import check_sample_weight
from ._bandwidth_isj import isj_bandwidth
from ._kernels import check_kernel, kernel_coordinate_variance, log_kernel_norm

RULES = ("scott", "silverman", "isj")

# Smallest eigenvalue of the correlation matrix below which the covariance counts as singular
# (exactly collinear columns give ~1e-16 after rounding; real, strongly correlated data ≫ 1e-12).
_SINGULAR_TOL = 1e-12

DEFAULT_CV_FACTORS = np.geomspace(0.05, 3.0, 41)


# ----------------------------------------------------------------------------------- inputs


def _as_2d(X, name="X"):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n, d); got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty; a bandwidth needs data")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def _check_weights(weights, n):
    """float64 (n,) non-negative finite weights with a positive sum, or None for equal weights."""
    return check_sample_weight(weights, n, xp=np, name="weights")


# ------------------------------------------------------------------------ rules of thumb


def effective_n(weights) -> float:
    """Kish's effective sample size 1 / Σ w_i² with the weights normalised to sum to 1."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    w = _check_weights(w, w.shape[0])
    w = w / np.sum(w)
    return float(1.0 / np.sum(w * w))


def weighted_covariance(X, weights=None) -> np.ndarray:
    """Unbiased weighted covariance (d, d) of the rows of X, as ``np.cov(X.T, aweights=weights)``
    (and ``scipy.stats.gaussian_kde``): Σ w (x − x̄)(x − x̄)ᵀ / (V₁ − V₂/V₁), V₁ = Σw, V₂ = Σw²."""
    X = _as_2d(X)
    n = X.shape[0]
    w = _check_weights(weights, n)
    if w is None:
        w = np.ones(n)
    v1 = np.sum(w)
    denom = v1 - np.sum(w * w) / v1
    if not denom > 0:
        raise ValueError(
            "the covariance needs at least 2 points with positive weight; pass a float bandwidth"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        mean = (w @ X) / v1
        if not np.all(np.isfinite(mean)):
            mean = 2.0 * ((w / v1) @ (0.5 * X))  # data near ±1.8e308: average the halves
        Xc = X - mean
        cov = (Xc.T * w) @ Xc / denom
    _check_covariance_range(cov, Xc)
    return cov


# Variances a covariance bandwidth can hold: their square roots, products and the rules' factors
# stay normal float64 numbers inside this range.
_VARIANCE_RANGE = (1e-290, 1e290)


def _check_covariance_range(cov, Xc):
    """Raise a ValueError saying to rescale when the data's variances overflow float64 or
    underflow it (or come near either end, where a bandwidth matrix is not representable).
    Constant columns (all of ``Xc`` zero) are left to the callers' own message."""
    var = np.diag(np.atleast_2d(cov))
    lo, hi = _VARIANCE_RANGE
    varies = np.any(Xc != 0, axis=0)
    if not np.all(np.isfinite(cov)) or np.any(var[varies] > hi) or np.any(var[varies] < lo):
        raise ValueError(
            f"the data's variances are outside what a covariance bandwidth can represent in float64 "
            f"({lo:g} to {hi:g}; a spread near 1e145 or more squares to overflow, near 1e-145 or "
            "less to underflow): rescale the data (divide by a typical magnitude), or pass a float "
            "bandwidth"
        )


def scott_factor(neff: float, d: int) -> float:
    """Scott's rule n^(-1/(d+4)) (scipy's definition, with n the effective sample size)."""
    return float(neff) ** (-1.0 / (d + 4))


def silverman_factor(neff: float, d: int) -> float:
    """Silverman's rule (n (d+2) / 4)^(-1/(d+4)) (scipy's definition)."""
    return (float(neff) * (d + 2) / 4.0) ** (-1.0 / (d + 4))


def _check_support(X, w):
    """Raise a ValueError unless at least d + 1 points have positive weight; return those points."""
    d = X.shape[1]
    support = X if w is None else X[w > 0]
    if support.shape[0] < d + 1:
        raise ValueError(
            f"a covariance-based bandwidth in {d} dimensions needs at least {d + 1} points with "
            f"positive weight; got {support.shape[0]}. Pass a float bandwidth, or use fewer features"
        )
    return support


def _check_covariance(cov, support):
    """Raise a ValueError that says what to do if ``cov`` is singular."""
    d = support.shape[1]
    low, high = column_extremes(support)
    constant = np.flatnonzero(high == low)
    if constant.size:
        raise ValueError(
            f"feature(s) {constant.tolist()} are constant, so the data covariance is singular; "
            "drop the constant columns, or pass a float bandwidth"
        )
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    if d > 1 and np.linalg.eigvalsh(corr)[0] < _SINGULAR_TOL:
        raise ValueError(
            "the data covariance is singular (some features are collinear: a linear combination "
            "of them is constant); drop the collinear columns (e.g. with PCA), or pass a float bandwidth"
        )


def rule_bandwidth_matrix(X, weights, rule, kernel="gaussian") -> np.ndarray:
    """The (d, d) bandwidth matrix of a rule for ``kernel``: the rule's kernel covariance divided by
    the unit kernel's coordinate variance.

    rule "scott"/"silverman": weighted covariance × factor(neff, d)², as scipy.stats.gaussian_kde.
    rule "isj": 1-D only; σ_isj² (:func:`isj_bandwidth`).
    Raises ValueError for a singular covariance (constant or collinear features, too few points).
    """
    X = _as_2d(X)
    n, d = X.shape
    kernel = check_kernel(kernel)
    w = _check_weights(weights, n)
    if rule == "isj":
        if d != 1:
            raise ValueError(
                f'bandwidth rule "isj" is for 1-D data only; X has {d} features. '
                'Use "scott", "silverman" or "cv"'
            )
        sigma = isj_bandwidth(X[:, 0], w)
        return np.array([[sigma * sigma / kernel_coordinate_variance(kernel, 1)]])
    if rule not in ("scott", "silverman"):
        raise ValueError(f"rule must be one of {RULES}; got {rule!r}")
    support = _check_support(X, w)
    cov = weighted_covariance(X, w)
    _check_covariance(cov, support)
    neff = float(n) if w is None else effective_n(w)
    factor = scott_factor(neff, d) if rule == "scott" else silverman_factor(neff, d)
    return cov * (factor * factor / kernel_coordinate_variance(kernel, d))


def scalar_rule_bandwidth(X, weights, rule, kernel="gaussian") -> float:
    """A scalar bandwidth h of a rule for ``kernel``, for metrics other than the euclidean (whose
    kernel takes no matrix): the rule's factor(neff, d) times the root mean of the per-feature
    weighted variances, divided by the unit kernel's coordinate standard deviation, so that with
    isotropic data it is the bandwidth of :func:`rule_bandwidth_matrix` (H = h² I).

    Raises ValueError when every feature is constant (zero spread)."""
    X = _as_2d(X)
    n, d = X.shape
    kernel = check_kernel(kernel)
    if rule not in ("scott", "silverman"):
        raise ValueError(f"rule must be 'scott' or 'silverman'; got {rule!r}")
    w = _check_weights(weights, n)
    variance = float(np.mean(np.diag(weighted_covariance(X, w))))
    if not (variance > 0 and np.isfinite(variance)):
        raise ValueError(
            "the data have no spread (every feature constant) or a spread that overflows float64, "
            "so a rule has nothing to scale; pass a float bandwidth (or rescale the data)"
        )
    neff = float(n) if w is None else effective_n(w)
    factor = scott_factor(neff, d) if rule == "scott" else silverman_factor(neff, d)
    return float(factor * math.sqrt(variance / kernel_coordinate_variance(kernel, d)))


# ------------------------------------------------------------- likelihood cross-validation


def cv_bandwidth_factor(X_whitened, weights, kernel="gaussian", factors=None):
    """The scale factor c (bandwidth matrix c² H0) that maximises the leave-one-out likelihood.

    ``X_whitened`` (n, d) are the data whitened by H0's Cholesky factor. For each candidate c in
    ``factors`` (default :data:`DEFAULT_CV_FACTORS`) the LOO log-likelihood (in whitened
    coordinates, i.e. up to the constant −Σw·log|L0|) is

        Σ_i w_i log( c_d Σ_{j≠i} w_j k(r_ij / c) / ((Σ_{j≠i} w_j) c^d) ),   c_d = exp(log_kernel_norm),

    with w as given (None: all 1; points with w_i = 0 add nothing). Every candidate is evaluated
    in one pass over the pairs. A candidate giving some point zero LOO density (compact kernels,
    too small a factor) scores −inf. Returns ``(best_factor, loglik)`` with loglik (g,) in the
    order of ``factors``. Warns (UserWarning) when the best factor is the smallest or largest of
    the grid; raises ValueError when every candidate scores −inf.
    """
    from ._kde_cv_cpu import kde_loo_logsum_grid

    X = _as_2d(X_whitened, "X_whitened")
    n, d = X.shape
    kernel = check_kernel(kernel)
    w, log_w, factors = cv_grid_inputs(weights, n, factors)
    L = kde_loo_logsum_grid(X, log_w, kernel, 1.0 / factors)  # (n, g)
    return cv_factor_from_loo(L, w, d, kernel, factors)


def cv_grid_inputs(weights, n, factors=None):
    """Checked inputs of the cross-validation: (w (n,) float64, log w, factors (g,) float64)."""
    w = _check_weights(weights, n)
    if w is None:
        w = np.ones(n)
    if np.count_nonzero(w) < 2:
        raise ValueError("cross-validation needs at least 2 points with positive weight; pass a float bandwidth")
    factors = DEFAULT_CV_FACTORS if factors is None else factors
    factors = np.asarray(factors, dtype=np.float64).reshape(-1)
    if factors.size == 0 or not np.all(np.isfinite(factors)) or np.any(factors <= 0):
        raise ValueError(f"factors must be a non-empty array of positive finite numbers; got {factors!r}")
    with np.errstate(divide="ignore"):
        log_w = np.log(w)
    return w, log_w, factors


def cv_factor_from_loo(L, w, d, kernel, factors):
    """The rest of :func:`cv_bandwidth_factor` from the leave-one-out sums ``L`` (n, g) (of the CPU
    or the GPU engine): the weighted LOO log-likelihood of each factor, the best, the edge warning."""
    L = np.asarray(L, dtype=np.float64)
    active = w > 0
    total = np.sum(w)
    others = total - w[active]
    # Σ_{j≠i} w_j by subtraction loses precision only when w_i is most of the total (at most one
    # point, w_i > Σw/2): sum the others directly there.
    heavy = np.flatnonzero(w[active] > 0.5 * total)
    for a in heavy:
        i = np.flatnonzero(active)[a]
        others[a] = np.sum(w[:i]) + np.sum(w[i + 1 :])
    log_density = (
        L[active]
        - np.log(others)[:, None]
        - d * np.log(factors)[None, :]
        + log_kernel_norm(kernel, d)
    )
    loglik = w[active] @ log_density
    loglik[np.isnan(loglik)] = -np.inf  # (−inf) + … combinations; a point with no neighbours
    if not np.any(np.isfinite(loglik)):
        raise ValueError(
            f"every candidate bandwidth factor (from {factors.min():g} to {factors.max():g}) gives "
            f"some point zero leave-one-out density with the {kernel!r} kernel; use larger factors "
            "or a kernel with unbounded support (gaussian, exponential)"
        )
    best = int(np.argmax(loglik))
    best_factor = float(factors[best])
    if factors.size > 1 and (best_factor == factors.min() or best_factor == factors.max()):
        warnings.warn(
            f"the cross-validated bandwidth factor {best_factor:g} is at the edge of the candidate "
            f"grid [{factors.min():g}, {factors.max():g}] ({factors.size} factors); the optimum may "
            "lie outside it: widen the grid",
            UserWarning,
            stacklevel=2,
        )
    return best_factor, loglik


# -- the bandwidth matrix: its factor, whitening, adaptive factors --------------------------------


def cholesky_bandwidth(H):
    """Lower Cholesky factor of a bandwidth matrix, with an error that says what to do."""
    try:
        return cholesky(np.asarray(H, dtype=np.float64), lower=True)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the bandwidth matrix is not positive definite; pass a symmetric positive-definite "
            "matrix (for a rule: the data covariance is singular — drop constant or collinear "
            "features, or pass a float or per-feature bandwidth)"
        ) from None


def whiten(chol, X):
    """L⁻¹ xᵢ for every row of X (n, d): a division when L is diagonal, else a triangular solve.
    Rows far beyond the bandwidth's scale overflow to ±inf (or NaN from inf − inf) silently."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.count_nonzero(chol - np.diag(np.diagonal(chol))) == 0:
            return X / np.diagonal(chol)
        return solve_triangular(chol, X.T, lower=True, check_finite=False).T


def abramson_from_pilot(log_pilot, weights, xp=np):
    """Abramson's λ_j = (f̃(x_j)/g)^(-1/2) from the pilot's log-densities at the training points,
    g their weighted geometric mean; NumPy arrays, or CuPy arrays with ``xp=cupy``."""
    w = weights / weights.sum()
    positive = w > 0
    if not bool(xp.isfinite(log_pilot[positive]).all()):
        raise ValueError("adaptive=True needs a positive pilot density at every training point")
    log_g = (w[positive] * log_pilot[positive]).sum()
    log_pilot = xp.where(xp.isfinite(log_pilot), log_pilot, log_g)
    return xp.exp(-0.5 * (log_pilot - log_g))
