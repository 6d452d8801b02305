"""The parameter mathematics of the Gaussian mixture: sufficient statistics, the M-step, the precision
Cholesky factors and their conversions, and the checks of user-given parameters.

The M-step works from sufficient statistics taken about the current means (``_mixture_cpu``):
with R_k = Σ w r_ik, Sx_k = Σ w r_ik (x_i − c_k) and Sxx_k = Σ w r_ik (x_i − c_k)(x_i − c_k)ᵀ,

    n_k = R_k + 10 ε,   μ_k = c_k + δ_k,   δ_k = (Sx_k − 10 ε c_k) / n_k   (= Σ w r x / n_k)
    Σ_k = (Sxx_k − Sx_k δ_kᵀ − δ_k Sx_kᵀ + R_k δ_k δ_kᵀ) / n_k + reg_covar · I

which is scikit-learn's Σ w r (x − μ_k)(x − μ_k)ᵀ / n_k exactly, computed without the
cancellation of E[x xᵀ] − μμᵀ. The covariance types are small module-level functions picked from
a dict, as in scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import numpy as np
from scipy.linalg import solve_triangular
from sklearn.utils.validation import check_array

from .._backend import OPS, get_op

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_EPS = np.finfo(np.float64).eps

_OVERFLOW_ERROR = (
    "Fitting the mixture model failed: its sufficient statistics overflow float64 (the squares of the "
    "data's deviations exceed 1.8e308; the largest |x - mean| is {spread:.3g}). Scale the data, e.g. "
    "with sklearn.preprocessing.StandardScaler, or remove the extreme rows."
)

_PRECISION_ERROR = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, increase reg_covar, or scale the input data."
)


# Host-only ops outside the dispatch table: the double-double factorisations, the statistics of
# given responsibilities and k-means (initialisation).
_HOST_OPS = {
    "precision_cholesky_full": "_cholesky_dd",
    "cholesky_dd": "_cholesky_dd",
    "gmm_stats": "_mixture_cpu",
    "kmeans": "_kmeans_cpu",
}


def _op(name):
    """The CPU implementation of a mixture op, through the dispatch table when it lists it."""
    if name in OPS:
        return get_op(name, "cpu")
    return getattr(importlib.import_module(f"fastdensity.mixture.{_HOST_OPS[name]}"), name)


class Stats(NamedTuple):
    """Weighted sufficient statistics about per-component centres (see the module docstring).

    ``Sxx`` is (k, d, d) for full, (k, d) for diag and spherical, and for tied the (d, d)
    Σ w (x − shift)(x − shift)ᵀ."""

    R: np.ndarray
    Sx: np.ndarray
    Sxx: np.ndarray
    centres: np.ndarray
    shift: np.ndarray


# ------------------------------------------------------------------- M-step per covariance type
def _covariance_full(stats, nk, means, delta, reg_covar):
    R, Sx, Sxx = stats.R, stats.Sx, stats.Sxx
    cross = Sx[:, :, None] * delta[:, None, :]
    cov = Sxx - cross - cross.transpose(0, 2, 1) + R[:, None, None] * delta[:, :, None] * delta[:, None, :]
    cov /= nk[:, None, None]
    d = means.shape[1]
    cov[:, np.arange(d), np.arange(d)] += reg_covar
    return cov


def _covariance_tied(stats, nk, means, delta, reg_covar):
    # Σ_k Σ_i w r_ik (x_i − μ_k)(x_i − μ_k)ᵀ with x̃ = x − s, a_k = μ_k − s, S̃x_k = Σ w r (x − s):
    #   = Σ_i w x̃ x̃ᵀ − Σ_k (S̃x_k a_kᵀ + a_k S̃x_kᵀ) + Σ_k R_k a_k a_kᵀ      (Σ_k r_ik = 1)
    R = stats.R
    a = means - stats.shift
    sx_shift = stats.Sx + R[:, None] * (stats.centres - stats.shift)
    cross = sx_shift.T @ a
    cov = stats.Sxx - cross - cross.T + (R[:, None] * a).T @ a
    cov /= np.sum(nk)
    cov = 0.5 * (cov + cov.T)
    cov[np.diag_indices_from(cov)] += reg_covar
    return cov


def _covariance_diag(stats, nk, means, delta, reg_covar):
    R, Sx, Sxx = stats.R, stats.Sx, stats.Sxx
    return (Sxx - 2.0 * Sx * delta + R[:, None] * delta * delta) / nk[:, None] + reg_covar


def _covariance_spherical(stats, nk, means, delta, reg_covar):
    return np.mean(_covariance_diag(stats, nk, means, delta, reg_covar), axis=1)


_COVARIANCES = {
    "full": _covariance_full,
    "tied": _covariance_tied,
    "diag": _covariance_diag,
    "spherical": _covariance_spherical,
}


def overflow_error(spread):
    """The ValueError of statistics (or log-likelihoods) that overflowed: it names the remedy."""
    return ValueError(_OVERFLOW_ERROR.format(spread=float(spread)))


def check_finite_stats(stats):
    """Raise :func:`overflow_error` when the statistics are not finite (data too spread out for
    float64 squares)."""
    if not all(bool(np.all(np.isfinite(a))) for a in (stats.R, stats.Sx, stats.Sxx)):
        with np.errstate(over="ignore", invalid="ignore"):
            spread = np.max(np.abs(np.asarray(stats.centres) - np.asarray(stats.shift)))
        raise overflow_error(spread if np.isfinite(spread) else np.inf)


def estimate_gaussian_parameters(stats, reg_covar, covariance_type, eps_scale=1.0):
    """(n_k, means, covariances) from sufficient statistics; ``eps_scale`` is the mean sample
    weight (scikit-learn adds 10 ε to each n_k, i.e. 10 ε samples of weight 1). Statistics that
    overflowed raise the error of :func:`overflow_error`."""
    check_finite_stats(stats)
    tiny = 10.0 * _EPS * eps_scale
    with np.errstate(over="ignore", invalid="ignore"):
        nk = stats.R + tiny
        delta = (stats.Sx - tiny * stats.centres) / nk[:, None]
        means = stats.centres + delta
        covariances = _COVARIANCES[covariance_type](stats, nk, means, delta, reg_covar)
    if not (np.all(np.isfinite(means)) and np.all(np.isfinite(covariances))):
        check_finite_stats(stats._replace(Sx=means, Sxx=covariances))  # raises the overflow error
    return nk, means, covariances


def stats_from_resp(X, sample_weight, resp, covariance_type, shift):
    """Sufficient statistics from dense responsibilities (n, k) (``init_params="random"``), each
    component's about its own weighted mean: two passes of the E-step engine (the means, then the
    statistics about them), as scikit-learn's two-pass covariance."""
    shift = np.asarray(shift, dtype=np.float64)
    k = resp.shape[1]
    engine = _op("gmm_stats")
    R, Sx, _ = engine(X, sample_weight, np.broadcast_to(shift, (k, shift.shape[0])), "diag", shift, resp=resp)
    centres = shift + np.divide(Sx, R[:, None], out=np.zeros_like(Sx), where=R[:, None] > 0)
    return Stats(*engine(X, sample_weight, centres, covariance_type, shift, resp=resp), centres, shift)


def stats_from_labels(X, sample_weight, labels, centres, covariance_type, shift):
    """Sufficient statistics of hard labels (n,) int64 (−1: no component) about ``centres`` (k, d),
    in one pass of the E-step engine (``init_params`` "kmeans", "k-means++", "random_from_data").
    The centres need not be the clusters' means (the M-step corrects for the offset), but should be
    near them: the k-means centres, or the seed rows."""
    shift = np.asarray(shift, dtype=np.float64)
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    R, Sx, Sxx = _op("gmm_stats")(X, sample_weight, centres, covariance_type, shift, labels=labels)
    return Stats(R, Sx, Sxx, centres, shift)


def stats_about_centres(X, sample_weight, resp, covariance_type, shift, xp=np):
    """(R, Sx, Sxx, centres) of :func:`stats_from_resp` as arrays of ``xp`` (NumPy, or CuPy for
    device arrays): centres are the components' weighted means, ``shift`` for empty components
    and the centre of the tied Sxx."""
    wr = resp if sample_weight is None else resp * sample_weight[:, None]
    R = wr.sum(axis=0)
    k, d = resp.shape[1], X.shape[1]
    safe = xp.where(R > 0, R, 1.0)
    centres = xp.where(R[:, None] > 0, (wr.T @ X) / safe[:, None], shift[None, :])
    Sx = xp.empty((k, d))
    if covariance_type == "full":
        Sxx = xp.empty((k, d, d))
    elif covariance_type == "tied":
        Xs = X - shift
        weights = xp.ones(X.shape[0]) if sample_weight is None else sample_weight
        Sxx = (weights[:, None] * Xs).T @ Xs
    else:
        Sxx = xp.empty((k, d))
    for c in range(k):
        D = X - centres[c]
        Sx[c] = wr[:, c] @ D
        if covariance_type == "full":
            Sxx[c] = (wr[:, c, None] * D).T @ D
        elif covariance_type in ("diag", "spherical"):
            Sxx[c] = wr[:, c] @ (D * D)
    return R, Sx, Sxx, centres


# ---------------------------------------------------------------------- precision factors
def _not_positive_definite(components, reg_covar):
    which = "" if components is None else f" (component{'s' if len(components) > 1 else ''} {components})"
    reg = "" if reg_covar is None else f" with reg_covar={reg_covar!r}"
    return ValueError(
        f"{_PRECISION_ERROR} The covariance{which} is not numerically positive definite{reg}."
    )


def compute_precision_cholesky(covariances, covariance_type, reg_covar=None):
    """Upper-triangular precision factors U (U Uᵀ = Σ⁻¹) in scikit-learn's layout.

    Full and tied factors are computed in double-double arithmetic and rounded once (accurate
    for ill-conditioned covariances). A covariance that is not positive definite raises a
    ``ValueError`` that names the remedies (fewer components, a larger ``reg_covar``, scaled data).
    """
    cov = np.asarray(covariances, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        stack = cov if covariance_type == "full" else cov[None]
        if not np.all(np.isfinite(stack)):
            raise _not_positive_definite(None, reg_covar)
        # Each matrix scaled by an even power of two 4^-e (exact) to a diagonal near 1, so that the
        # double-double splitting (×(2^27 + 1)) neither overflows nor underflows for covariances
        # near the ends of the float64 range; the factors scale back exactly by 2^-e.
        top = np.max(np.abs(np.diagonal(stack, axis1=1, axis2=2)), axis=1)
        e = np.where(top > 0, np.floor(np.log2(np.where(top > 0, top, 1.0)) / 2), 0).astype(np.int64)
        U, ok = _op("precision_cholesky_full")(np.ldexp(stack, (-2 * e)[:, None, None]))
        U = np.ldexp(U, (-e)[:, None, None])
        if not np.all(ok):
            raise _not_positive_definite(np.flatnonzero(~ok).tolist() if covariance_type == "full" else None,
                                         reg_covar)
        return U if covariance_type == "full" else U[0]
    if not np.all(np.isfinite(cov)) or np.any(cov <= 0.0):
        bad = np.flatnonzero(~(cov > 0).reshape(cov.shape[0], -1).all(axis=1)).tolist()
        raise _not_positive_definite(bad, reg_covar)
    return 1.0 / np.sqrt(cov)


def precision_cholesky_from_precisions(precisions, covariance_type):
    """U with U Uᵀ = P, upper triangular: the Cholesky factor of the reversed matrix, reversed
    (J chol(J P J) J, scikit-learn #26415), in double-double arithmetic."""
    P = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        stack = P if covariance_type == "full" else P[None]
        L, ok = _op("cholesky_dd")(stack[:, ::-1, ::-1])
        if not np.all(ok):
            raise ValueError(f"'{covariance_type} precision' should be symmetric, positive-definite")
        U = np.ascontiguousarray(L[:, ::-1, ::-1])
        return U if covariance_type == "full" else U[0]
    return np.sqrt(P)


def covariances_from_precision_cholesky(prec_chol, covariance_type):
    """Σ = (U Uᵀ)⁻¹ = U⁻ᵀ U⁻¹ from the precision factors."""
    if covariance_type in ("full", "tied"):
        stack = prec_chol if covariance_type == "full" else prec_chol[None]
        out = np.empty_like(stack)
        for c, U in enumerate(stack):
            M = solve_triangular(U, np.eye(U.shape[0]), lower=False)
            out[c] = M.T @ M
        return out if covariance_type == "full" else out[0]
    return 1.0 / prec_chol**2


def precisions_from_cholesky(prec_chol, covariance_type):
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


# ----------------------------------------------------------------- initial-parameter checks
def _check_weights(weights, n_components):
    weights = check_array(weights, dtype=[np.float64, np.float32], ensure_2d=False, input_name="weights_init")
    if weights.shape != (n_components,):
        raise ValueError(f"The parameter 'weights' should have the shape of ({n_components},), but got {weights.shape}")
    if np.any(weights < 0.0) or np.any(weights > 1.0):
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got max value "
            f"{np.max(weights):.5f}, min value {np.min(weights):.5f}"
        )
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if not abs(1.0 - float(np.sum(weights))) <= atol:
        raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = {np.sum(weights):.5f}")
    return np.asarray(weights, dtype=np.float64)


def _check_means(means, n_components, n_features):
    means = check_array(means, dtype=[np.float64, np.float32], ensure_2d=False, input_name="means_init")
    if means.shape != (n_components, n_features):
        raise ValueError(
            f"The parameter 'means' should have the shape of ({n_components}, {n_features}), but got {means.shape}"
        )
    return np.asarray(means, dtype=np.float64)


def _check_precisions(precisions, covariance_type, n_components, n_features):
    precisions = check_array(precisions, dtype=[np.float64, np.float32], ensure_2d=False,
                             allow_nd=covariance_type == "full", input_name="precisions_init")
    shapes = {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }
    if precisions.shape != shapes[covariance_type]:
        raise ValueError(
            f"The parameter '{covariance_type} precision' should have the shape of "
            f"{shapes[covariance_type]}, but got {precisions.shape}"
        )
    P = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        for m in P if covariance_type == "full" else P[None]:
            if not (np.allclose(m, m.T) and np.all(np.linalg.eigvalsh(m) > 0.0)):
                raise ValueError(f"'{covariance_type} precision' should be symmetric, positive-definite")
    elif np.any(P <= 0.0):
        raise ValueError(f"'{covariance_type} precision' should be positive")
    return P
