"""``Normal`` (univariate) and ``MultivariateNormal`` (full, diagonal or spherical covariance).

Maximum-likelihood fits with weights: the weighted mean and the biased (divide by Σw) weighted
covariance. The multivariate log density uses the lower Cholesky factor L of the covariance
(Σ = L Lᵀ): log p(x) = −½‖L⁻¹(x − μ)‖² − Σ log L_ii − (d/2) log 2π, with a triangular solve and
never an explicit inverse. For a full covariance, L comes from a QR factorisation of the
weighted, centred data, so that Σ is not rounded before it is factored.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.linalg import qr, solve_triangular

from .._backend._validation import Options, Real
from ._base import ParametricDensity, UnivariateDensity

_LOG_2PI = float(np.log(2.0 * np.pi))
_COVARIANCE_TYPES = ("full", "diag", "spherical")


def _weighted_mean_and_centered(X, w):
    """Weighted mean and centred data; ``w`` must sum to one. Data near ±1.8e308 are averaged
    by halves (exact) so that the sum cannot overflow; centred values beyond the float64 range
    raise a ValueError."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = w @ X
        if not np.all(np.isfinite(mean)):
            mean = 2.0 * (w @ (0.5 * X))
        centered = X - mean
    if not np.all(np.isfinite(centered)):
        raise _overflow_error()
    return mean, centered


def _overflow_error():
    return ValueError(
        "the data's spread overflows float64 (deviations from the mean, or their squares, "
        "exceed 1.8e308): the variance cannot be represented; rescale the data (e.g. divide by "
        "a typical magnitude)"
    )


def _weighted_variance(centered, w):
    """Σ w c² (``w`` sums to one) per column, with a ValueError when it overflows."""
    with np.errstate(over="ignore"):
        var = w @ centered**2
    if not np.all(np.isfinite(var)):
        raise _overflow_error()
    return var


class Normal(UnivariateDensity):
    """Univariate normal distribution N(μ, σ²) fitted by weighted maximum likelihood.

    μ = Σ w_i x_i / Σ w_i and σ² = Σ w_i (x_i − μ)² / Σ w_i + ``reg_covar`` (the biased MLE, as
    ``scipy.stats.norm.fit``).

    Parameters
    ----------
    reg_covar : float, default=0.0
        Non-negative amount added to the variance. Unlike ``MultivariateNormal`` the default is
        zero, so the fit is the exact MLE; constant data then raise an error that suggests it.

    Attributes
    ----------
    mean_ : float
    var_ : float
        The variance σ².
    std_ : float
        The standard deviation σ.
    n_parameters_ : int
        2.
    n_features_in_ : int
        1.

    Notes
    -----
    ``X`` may have shape (n_samples,) or (n_samples, 1). ``score`` is the mean log-likelihood
    per sample.
    """

    _name = "normal"

    def __init__(self, *, reg_covar=0.0):
        self.reg_covar = reg_covar

    _constraints = {"reg_covar": Real(0)}

    def _fit(self, x, w):
        w = w / np.sum(w)
        mean, centered = _weighted_mean_and_centered(x, w)
        var = float(_weighted_variance(centered, w)) + float(self.reg_covar)
        if not var > 0 and np.any(centered != 0):
            raise ValueError(
                "the data's variance underflows float64 (a spread near 1e-154 or below squares "
                "to 0): rescale the data, or pass reg_covar > 0"
            )
        if not var > 0:
            n = x.shape[0]
            raise ValueError(
                f"Normal needs a positive variance, but the data are constant ({n} sample"
                f"{'' if n == 1 else 's'} with positive weight); pass reg_covar > 0 or more "
                "varied data"
            )
        self.mean_ = float(mean)
        self.var_ = var
        self.std_ = float(np.sqrt(var))
        self.n_parameters_ = 2

    def _log_density(self, x):
        z = (x - self.mean_) / self.std_
        return -0.5 * z * z - np.log(self.std_) - 0.5 * _LOG_2PI

    def _sample(self, n_samples, gen):
        return self.mean_ + self.std_ * gen.standard_normal(n_samples)

    def _scipy_distribution(self):
        return stats.norm(loc=self.mean_, scale=self.std_)


class MultivariateNormal(ParametricDensity):
    """Multivariate normal distribution N(μ, Σ) fitted by weighted maximum likelihood.

    Parameters
    ----------
    covariance_type : {"full", "diag", "spherical"}, default="full"
        "full": any symmetric positive-definite Σ; "diag": the per-feature variances;
        "spherical": one variance σ² I, the mean of the per-feature variances (as scikit-learn's
        ``GaussianMixture``).
    reg_covar : float, default=1e-6
        Non-negative amount added to the diagonal of Σ, as in scikit-learn's ``GaussianMixture``,
        so that a single sample or collinear features still give a density. It is an absolute
        amount: for data on a scale much smaller than 1e-3 rescale the data or lower it; pass 0
        for the exact maximum-likelihood estimate.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    covariance_ : ndarray of shape (n_features, n_features), (n_features,) or float
        Σ for "full", its diagonal for "diag", the single variance for "spherical".
    covariance_cholesky_ : ndarray of shape (n_features, n_features), (n_features,) or float
        Lower Cholesky factor L of Σ (Σ = L Lᵀ) for "full", computed from a QR factorisation of
        the weighted, centred data rather than from Σ itself (see Notes); the standard deviations
        otherwise.
    n_parameters_ : int
        d + d(d+1)/2 ("full"), 2d ("diag") or d + 1 ("spherical").
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on data with string column names.

    Notes
    -----
    ``score`` is the mean log-likelihood per sample. Log densities come from triangular solves
    with L and log det Σ = 2 Σ log L_ii; no inverse is formed. L is the transposed R factor of
    the QR factorisation of [√w_i (x_i − μ)]_i stacked on √reg_covar·I, so Σ is never rounded
    before it is factored: a covariance of condition number κ loses about κ^½·ε of relative
    accuracy in the log densities, where factoring the formed Σ loses κ·ε (1e-6 at κ = 1e10).
    A covariance that is not numerically positive definite raises a ``ValueError`` that names
    the remedies.
    """

    def __init__(self, *, covariance_type="full", reg_covar=1e-6):
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar

    _constraints = {"covariance_type": Options(_COVARIANCE_TYPES), "reg_covar": Real(0)}

    def _fit(self, X, w):
        n, d = X.shape
        reg = float(self.reg_covar)
        w = w / np.sum(w)
        mean, centered = _weighted_mean_and_centered(X, w)
        if self.covariance_type == "full":
            chol = _cholesky_from_data(centered * np.sqrt(w)[:, None], reg, n)
            with np.errstate(over="ignore", invalid="ignore"):
                cov = chol @ chol.T
            if not np.all(np.isfinite(cov)):
                raise _overflow_error()
            n_cov = d * (d + 1) // 2
        else:
            variances = _weighted_variance(centered, w)
            if self.covariance_type == "diag":
                cov = variances + reg
                n_cov = d
            else:
                cov = float(np.mean(variances)) + reg
                n_cov = 1
            if not np.all(np.asarray(cov) > 0):
                raise _not_positive_definite(n)
            chol = np.sqrt(cov)
        self.mean_ = mean
        self.covariance_ = cov
        self.covariance_cholesky_ = chol
        self.n_parameters_ = int(d + n_cov)

    def _log_density(self, X):
        d = X.shape[1]
        centered = X - self.mean_
        chol = self.covariance_cholesky_
        with np.errstate(over="ignore", invalid="ignore"):
            if self.covariance_type == "full":
                z = solve_triangular(chol, centered.T, lower=True, check_finite=False).T
                log_det_half = float(np.sum(np.log(np.diag(chol))))
            else:
                z = centered / chol
                log_det_half = float(np.sum(np.log(chol))) if self.covariance_type == "diag" else d * float(np.log(chol))
            quad = np.einsum("ij,ij->i", z, z)
        # A query whose whitened coordinates overflow (inf, or NaN from inf·0 and inf − inf in
        # the substitution) is infinitely far: log density −inf.
        quad[~np.all(np.isfinite(z), axis=1)] = np.inf
        return -0.5 * quad - log_det_half - 0.5 * d * _LOG_2PI

    def _sample(self, n_samples, gen):
        d = self.mean_.shape[0]
        z = gen.standard_normal((n_samples, d))
        if self.covariance_type == "full":
            return self.mean_ + z @ self.covariance_cholesky_.T
        return self.mean_ + z * self.covariance_cholesky_


def _not_positive_definite(n):
    return ValueError(
        f"the fitted covariance (from {n} sample{'' if n == 1 else 's'} with positive weight) is not "
        "positive definite, so it has no Cholesky factor: increase reg_covar, use "
        "covariance_type='diag' or 'spherical', drop constant or collinear features, or scale "
        "the data"
    )


def _cholesky_from_data(A, reg, n):
    """Lower Cholesky factor L of Σ = AᵀA + reg·I, from a QR factorisation of [A; √reg·I].

    The triangular factor comes straight from the (weighted, centred) data, never from the
    formed product AᵀA, whose rounding would square the condition number: for a covariance of
    condition number κ the log densities lose about κ^½·ε of relative accuracy instead of κ·ε.
    A factor whose smallest diagonal entry is below max(n, d)·ε times its largest is treated as
    singular.
    """
    d = A.shape[1]
    if reg > 0:
        A = np.vstack([A, np.sqrt(reg) * np.eye(d)])
    if not np.all(np.isfinite(A)):
        raise ValueError("the fitted covariance is not finite; scale the data (values overflow)")
    if A.shape[0] < d:
        raise _not_positive_definite(n)
    (packed, _), _ = qr(A, mode="raw", overwrite_a=True, check_finite=False)
    r = np.triu(packed[:d])
    diag = np.abs(np.diag(r))
    if not diag.min() > max(A.shape) * np.finfo(np.float64).eps * diag.max():
        raise _not_positive_definite(n)
    # Rows of R scaled to a positive diagonal: L = Rᵀ is then the Cholesky factor of RᵀR.
    return np.ascontiguousarray((r * np.sign(np.diag(r))[:, None]).T)


__all__ = ["MultivariateNormal", "Normal"]
