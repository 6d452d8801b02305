"""Plots for fitted density estimators. matplotlib is imported inside each function, never at
import time (``pip install fastdensity[plot]`` installs it)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._backend import to_host_numpy


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "fastdensity.plot needs matplotlib; install it with `pip install fastdensity[plot]` "
            "(or `pip install matplotlib`)"
        ) from exc
    return plt


def qq_plot(estimator, X, ax=None):
    """Quantile-quantile plot of the data ``X`` against a fitted univariate distribution.

    The i-th smallest of the n values is plotted against the fitted distribution's quantile
    ``estimator.ppf((i − 0.5) / n)`` (Hazen plotting positions), with the line y = x: points on
    the line mean the data follow the fitted distribution. For discrete distributions the
    theoretical quantiles are steps.

    Parameters
    ----------
    estimator : fitted univariate estimator with ``ppf``
        One of ``Normal``, ``Exponential``, ``Poisson``, ``Bernoulli``, ``Gamma``, ``LogNormal``,
        ``Beta``, ``Categorical`` from ``fastdensity.parametric``.
    X : array-like of shape (n_samples,) or (n_samples, 1)
        The data, usually held-out or the training data.
    ax : matplotlib Axes, default=None
        Where to draw; None creates a new figure.

    Returns
    -------
    ax : matplotlib Axes
    """
    if not callable(getattr(estimator, "ppf", None)):
        raise TypeError(
            "qq_plot needs a fitted univariate fastdensity.parametric estimator with a ppf method "
            f"(Normal, Gamma, ...); got {type(estimator).__name__}"
        )
    check_is_fitted(estimator)
    x = np.asarray(to_host_numpy(X), dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"qq_plot needs X of shape (n_samples,) or (n_samples, 1); got shape {x.shape}")
    if x.size == 0:
        raise ValueError("qq_plot needs at least one value in X")
    if not np.all(np.isfinite(x)):
        raise ValueError("qq_plot needs finite values in X (found NaN or inf)")
    sample_q = np.sort(x)
    n = sample_q.size
    theoretical_q = np.asarray(estimator.ppf((np.arange(1, n + 1) - 0.5) / n), dtype=np.float64)

    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots()
    ax.scatter(theoretical_q, sample_q, s=12, alpha=0.7, label="data")
    finite = np.isfinite(theoretical_q)
    lo = min(np.min(theoretical_q[finite], initial=sample_q[0]), sample_q[0])
    hi = max(np.max(theoretical_q[finite], initial=sample_q[-1]), sample_q[-1])
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1, label="y = x")
    ax.set_xlabel(f"theoretical quantiles ({type(estimator).__name__})")
    ax.set_ylabel("sample quantiles")
    ax.set_title("Q-Q plot")
    ax.legend(loc="best")
    return ax


__all__ = ["qq_plot"]
