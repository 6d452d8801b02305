"""Invariances of the fit: row order, sample weights (integer = repeated rows, scaling, zeros),
thread count, and predict after fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastdensity.mixture import GaussianMixture
from mixture_helpers import COVARIANCE_TYPES, blobs, fit_quietly, max_rel, sklearn_init

PARAMS = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def assert_close_fits(a, b, rtol):
    for name in PARAMS:
        err = max_rel(getattr(a, name), getattr(b, name))
        assert err <= rtol, f"{name}: {err:.2e}"
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=rtol)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_row_permutation_changes_nothing(covariance_type):
    X, _ = blobs(n=700, d=3, k=3, seed=10)
    init = sklearn_init(X, 3, covariance_type)
    perm = np.random.default_rng(0).permutation(len(X))
    a = fit_quietly(GaussianMixture(3, covariance_type=covariance_type, max_iter=20, tol=0.0, **init), X)
    b = fit_quietly(GaussianMixture(3, covariance_type=covariance_type, max_iter=20, tol=0.0, **init), X[perm])
    assert_close_fits(a, b, 1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type):
    X, _ = blobs(n=400, d=2, k=3, seed=11)
    weights = np.random.default_rng(1).integers(0, 4, size=len(X))
    init = sklearn_init(X, 3, covariance_type)
    params = dict(covariance_type=covariance_type, max_iter=20, tol=0.0, **init)
    weighted = fit_quietly(GaussianMixture(3, **params), X, sample_weight=weights)
    repeated = fit_quietly(GaussianMixture(3, **params), np.repeat(X, weights, axis=0))
    assert_close_fits(weighted, repeated, 1e-10)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
def test_integer_weights_equal_repeated_rows_with_kmeans_init(init_params):
    """The k-means initialisations take the weights too: well-separated clusters end in the
    same optimum (the random draws differ between weighting and repeating)."""
    X, _ = blobs(n=300, d=2, k=3, seed=12, separation=8.0)
    weights = np.random.default_rng(2).integers(1, 4, size=len(X))
    params = dict(init_params=init_params, random_state=0, tol=1e-10, max_iter=500)
    weighted = fit_quietly(GaussianMixture(3, **params), X, sample_weight=weights)
    repeated = fit_quietly(GaussianMixture(3, **params), np.repeat(X, weights, axis=0))
    order_w, order_r = np.argsort(weighted.means_[:, 0]), np.argsort(repeated.means_[:, 0])
    np.testing.assert_allclose(weighted.means_[order_w], repeated.means_[order_r], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(weighted.weights_[order_w], repeated.weights_[order_r], rtol=1e-6)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_scaling_weights_changes_nothing(covariance_type):
    X, _ = blobs(n=500, d=3, k=2, seed=13)
    weights = np.random.default_rng(3).uniform(0.1, 2.0, size=len(X))
    init = sklearn_init(X, 2, covariance_type)
    params = dict(covariance_type=covariance_type, max_iter=15, tol=0.0, **init)
    base = fit_quietly(GaussianMixture(2, **params), X, sample_weight=weights)
    for scale in (1e-20, 7.0, 1e20):
        scaled = fit_quietly(GaussianMixture(2, **params), X, sample_weight=weights * scale)
        assert_close_fits(scaled, base, 1e-12)


def test_unit_weights_equal_no_weights():
    X, _ = blobs(n=500, d=3, k=3, seed=14)
    a = fit_quietly(GaussianMixture(3, random_state=0), X)
    b = fit_quietly(GaussianMixture(3, random_state=0), X, sample_weight=np.ones(len(X)))
    for name in PARAMS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_zero_weight_equals_removed_rows():
    X, _ = blobs(n=500, d=3, k=2, seed=15)
    keep = np.random.default_rng(4).uniform(size=len(X)) > 0.3
    init = sklearn_init(X, 2, "full")
    params = dict(max_iter=15, tol=0.0, **init)
    weighted = fit_quietly(GaussianMixture(2, **params), X, sample_weight=keep.astype(float))
    removed = fit_quietly(GaussianMixture(2, **params), X[keep])
    assert_close_fits(weighted, removed, 1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_is_bit_identical_across_thread_counts(covariance_type):
    X, _ = blobs(n=9000, d=4, k=4, seed=16)
    w = np.random.default_rng(5).uniform(size=len(X))
    fits = [fit_quietly(GaussianMixture(4, covariance_type=covariance_type, max_iter=8, tol=0.0,
                                        random_state=0, init_params="k-means++", n_jobs=n_jobs), X,
                        sample_weight=w) for n_jobs in (1, 2)]
    for name in PARAMS + ("precisions_",):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    assert fits[0].lower_bound_ == fits[1].lower_bound_
    np.testing.assert_array_equal(fits[0].score_samples(X), fits[1].score_samples(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_predict_equals_fit_then_predict(covariance_type):
    X, _ = blobs(n=600, d=2, k=4, seed=17, separation=1.5)
    for max_iter in (1, 3, 100):
        params = dict(covariance_type=covariance_type, max_iter=max_iter, random_state=1, tol=1e-6,
                      init_params="k-means++")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = GaussianMixture(4, **params).fit_predict(X)
            model = GaussianMixture(4, **params).fit(X)
        np.testing.assert_array_equal(labels, model.predict(X))


def test_predictions_of_a_row_do_not_depend_on_the_batch():
    X, _ = blobs(n=3000, d=3, k=3, seed=18)
    model = fit_quietly(GaussianMixture(3, covariance_type="tied", random_state=0), X)
    rows = np.random.default_rng(6).choice(len(X), size=50, replace=False)
    np.testing.assert_array_equal(model.score_samples(X)[rows], model.score_samples(X[rows]))
    np.testing.assert_array_equal(model.predict_proba(X)[rows], model.predict_proba(X[rows]))
