"""Posterior probabilities and labels from weighted log-densities, robust to queries so far from
every component that all their log-densities underflow.

For a query x, log π_c + log N(x | μ_c, Σ_c) = cst_c − ½ m_c² with the squared Mahalanobis distance
m_c² = ‖(x − μ_c) U_c‖². When every m_c² overflows (|x| beyond ~1e154 σ; legal float64 input goes
to 1.8e308), every log-density is −inf in float64 (its true value is below −1e308), the density is
0 (``score_samples`` gives −inf), and the posterior cannot be formed by exp(log p − log Σ p). Its
limit is still well defined: differences of m_c² dwarf any difference of the cst_c, so the
posterior is 1 for the component with the smallest Mahalanobis distance. That distance is computed
here without overflow, from (x/s − μ_c/s) U_c with s = max(|x|, |μ|); components whose scaled
distances agree to rounding are decided by the larger cst_c (log weight + log-determinant
term), then the lower index. ``predict`` gives such a query that component and ``predict_proba``
a probability of 1 for it. Rows whose log-densities are finite take the usual path.

Every function takes the array module ``xp`` (NumPy on the host, CuPy on a GPU) and float64 host
parameters, so one code serves both engines.
"""

from __future__ import annotations

import math

import numpy as np

_EPS = np.finfo(np.float64).eps


def clean_log_prob(wlp, xp=np):
    """NaN (from inf − inf when x − μ overflows) counts as −inf."""
    return xp.where(xp.isnan(wlp), -xp.inf, wlp)


def _far_labels(X, means, prec_chol, log_weights, cov_type, xp):
    """Labels of rows whose log-densities all underflowed (see the module docstring)."""
    d = means.shape[1]
    if cov_type == "full":
        logdet = np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)
    elif cov_type == "tied":
        logdet = np.full(means.shape[0], np.sum(np.log(np.diag(prec_chol))))
    elif cov_type == "diag":
        logdet = np.sum(np.log(prec_chol), axis=1)
    else:
        logdet = d * np.log(prec_chol)
    cst = xp.asarray(np.asarray(log_weights, dtype=np.float64) + logdet - 0.5 * d * math.log(2 * math.pi))
    mu = xp.asarray(means)
    U = xp.asarray(prec_chol)
    X = X.astype(xp.float64)
    scale = xp.maximum(xp.max(xp.abs(X), axis=1), float(np.max(np.abs(means))))
    scale = xp.where(scale > 0, scale, 1.0)[:, None]
    D = (X / scale)[:, None, :] - mu[None, :, :] / scale[:, :, None]  # (m, k, d), |entries| <= 2
    if cov_type == "full":
        Y = xp.einsum("mkd,kde->mke", D, U)
    elif cov_type == "tied":
        Y = xp.einsum("mkd,de->mke", D, U)
    elif cov_type == "diag":
        Y = D * U[None]
    else:
        Y = D * U[None, :, None]
    with np.errstate(over="ignore"):
        q = xp.sum(Y * Y, axis=2)  # m_c² / s²
    qmin = xp.min(q, axis=1, keepdims=True)
    near = q <= qmin * (1.0 + 16.0 * d * _EPS)
    return xp.argmax(xp.where(near, cst[None, :], -xp.inf), axis=1)


def _far_rows(wlp, xp):
    mx = xp.max(wlp, axis=1)
    return mx, mx == -xp.inf


def labels_from_log_prob(wlp, X, means, prec_chol, log_weights, cov_type, xp=np):
    """argmax_c of the weighted log-densities (n, k), robust to rows that underflowed."""
    wlp = clean_log_prob(wlp, xp)
    labels = xp.argmax(wlp, axis=1)
    _, far = _far_rows(wlp, xp)
    if bool(xp.any(far)):
        labels[far] = _far_labels(X[far], means, prec_chol, log_weights, cov_type, xp)
    return labels


def proba_from_log_prob(wlp, X, means, prec_chol, log_weights, cov_type, xp=np):
    """Posterior probabilities (n, k) from the weighted log-densities, robust to rows that
    underflowed (those get probability 1 for the component of :func:`labels_from_log_prob`)."""
    wlp = clean_log_prob(wlp, xp)
    mx, far = _far_rows(wlp, xp)
    e = xp.exp(wlp - xp.where(far, 0.0, mx)[:, None])
    total = xp.sum(e, axis=1, keepdims=True)
    proba = e / xp.where(total > 0, total, 1.0)
    if bool(xp.any(far)):
        labels = _far_labels(X[far], means, prec_chol, log_weights, cov_type, xp)
        one_hot = xp.zeros((labels.shape[0], wlp.shape[1]))
        one_hot[xp.arange(labels.shape[0]), labels] = 1.0
        proba[far] = one_hot
    return proba
