"""GaussianMixture against scikit-learn's: the same initial parameters must give the same
parameters and log-likelihood to 1e-10 relative (float64), for every covariance type and
initialisation; plus the criteria, warm starts, far-from-origin data and float32 input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastdensity.mixture import GaussianMixture
from mixture_helpers import COVARIANCE_TYPES, assert_same_parameters, blobs, fit_quietly, max_rel, sklearn_init

RTOL = 1e-10


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_explicit_init_same_fit(covariance_type):
    X, _ = blobs(n=1200, d=3, k=3, seed=1)
    init = sklearn_init(X, 3, covariance_type)
    params = dict(covariance_type=covariance_type, max_iter=15, tol=0.0, **init)
    ours = fit_quietly(GaussianMixture(3, **params), X)
    theirs = fit_quietly(SkGaussianMixture(3, **params), X)
    assert_same_parameters(ours, theirs, RTOL)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=RTOL)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=RTOL)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=RTOL)
    assert ours.bic(X) == pytest.approx(theirs.bic(X), rel=RTOL)
    assert ours.aic(X) == pytest.approx(theirs.aic(X), rel=RTOL)
    assert ours._n_parameters() == theirs._n_parameters()


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_same_random_state_same_fit(init_params, covariance_type):
    """scikit-learn's own initialisation draws (same random_state) and EM to convergence."""
    X, _ = blobs(n=900, d=2, k=3, seed=2)
    params = dict(covariance_type=covariance_type, init_params=init_params, random_state=7, n_init=2,
                  max_iter=40, tol=1e-8)
    ours = fit_quietly(GaussianMixture(3, **params), X)
    theirs = fit_quietly(SkGaussianMixture(3, **params), X)
    assert_same_parameters(ours, theirs, RTOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(ours.fit_predict(X), theirs.fit_predict(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_warm_start_continues_like_sklearn(covariance_type):
    X, _ = blobs(n=800, d=3, k=2, seed=3)
    params = dict(covariance_type=covariance_type, warm_start=True, max_iter=3, tol=0.0, random_state=0)
    ours, theirs = GaussianMixture(2, **params), SkGaussianMixture(2, **params)
    for _ in range(3):
        fit_quietly(ours, X)
        fit_quietly(theirs, X)
    assert_same_parameters(ours, theirs, RTOL)


def test_max_iter_zero_returns_initial_parameters():
    X, _ = blobs(n=500, d=2, k=2, seed=4)
    params = dict(max_iter=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # no warning for max_iter=0
        ours = GaussianMixture(2, **params).fit(X)
    theirs = SkGaussianMixture(2, **params).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert max_rel(getattr(ours, name), getattr(theirs, name)) < RTOL
    assert ours.n_iter_ == 0 and ours.lower_bound_ == -np.inf


def test_precisions_init_with_max_iter_zero_sets_covariances():
    X, _ = blobs(n=400, d=3, k=2, seed=5)
    init = sklearn_init(X, 2, "full")
    gm = GaussianMixture(2, max_iter=0, **init).fit(X)
    covariances = np.linalg.inv(init["precisions_init"])
    assert max_rel(gm.covariances_, covariances) < 1e-12
    assert max_rel(gm.precisions_, init["precisions_init"]) < 1e-12


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_data_far_from_origin(covariance_type):
    """Data offset by 1e3 (|μ|/σ ≈ 1e3): the fit is the offset fit of the centred data.

    The statistics are taken about the current means, so nothing cancels (1e-14 here);
    scikit-learn's diag, spherical and tied formulas (E[x²] − μ²) lose about six digits
    (3e-10 to 1e-9 on the covariances of this test)."""
    X, _ = blobs(n=1000, d=3, k=3, seed=6, separation=3.0)
    init = sklearn_init(X, 3, covariance_type)
    params = dict(covariance_type=covariance_type, max_iter=10, tol=0.0)
    centred = fit_quietly(GaussianMixture(3, **params, **init), X)
    shifted_init = dict(init, means_init=init["means_init"] + 1e3)
    shifted = fit_quietly(GaussianMixture(3, **params, **shifted_init), X + 1e3)
    assert max_rel(shifted.means_ - 1e3, centred.means_) < 1e-12
    assert max_rel(shifted.covariances_, centred.covariances_) < 1e-12
    assert max_rel(shifted.weights_, centred.weights_) < 1e-12
    assert shifted.lower_bound_ == pytest.approx(centred.lower_bound_, rel=1e-12)


def test_float32_input():
    X, _ = blobs(n=600, d=2, k=2, seed=7)
    init = sklearn_init(X, 2, "full")
    g64 = fit_quietly(GaussianMixture(2, max_iter=5, tol=0.0, **init), X)
    g32 = fit_quietly(GaussianMixture(2, max_iter=5, tol=0.0, **init), X.astype(np.float32))
    assert g32.means_.dtype == np.float32  # scikit-learn >= 1.8 keeps float32 (computed in float64 here)
    assert max_rel(g32.means_, g64.means_) < 1e-6
    scores = g32.score_samples(X.astype(np.float32))
    assert scores.dtype == np.float32
    assert g32.predict_proba(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(scores, g64.score_samples(X), rtol=1e-5)
