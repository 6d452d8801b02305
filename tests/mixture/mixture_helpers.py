"""Shared data and comparisons for the mixture tests."""

from __future__ import annotations

import warnings

import numpy as np

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def blobs(n=1500, d=3, k=3, seed=0, separation=4.0, offset=0.0):
    """n rows from k Gaussian clusters with random (correlated) covariances; (X, labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=separation, size=(k, d))
    mixing = rng.normal(size=(k, d, d)) / np.sqrt(d) + 0.5 * np.eye(d)
    labels = rng.integers(0, k, size=n)
    X = centres[labels] + np.einsum("ni,nij->nj", rng.standard_normal((n, d)), mixing[labels])
    return X + offset, labels


def sklearn_init(X, k, covariance_type, seed=0, max_iter=2):
    """weights_init, means_init, precisions_init from a short scikit-learn fit."""
    from sklearn.mixture import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(k, covariance_type=covariance_type, max_iter=max_iter, random_state=seed).fit(X)
    return dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)


def max_rel(actual, desired):
    """Normwise relative difference max|a − b| / max|b|."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    scale = np.max(np.abs(desired)) if desired.size else 1.0
    return float(np.max(np.abs(actual - desired)) / scale) if desired.size else 0.0


def assert_same_parameters(ours, theirs, rtol):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        err = max_rel(getattr(ours, name), getattr(theirs, name))
        assert err <= rtol, f"{name}: max relative difference {err:.2e} > {rtol:.0e}"
    err = abs(ours.lower_bound_ - theirs.lower_bound_) / abs(theirs.lower_bound_)
    assert err <= rtol, f"lower_bound_: relative difference {err:.2e} > {rtol:.0e}"
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_


def fit_quietly(model, X, **kwargs):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, **kwargs)
