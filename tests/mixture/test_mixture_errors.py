"""Bad input gets a clear error; non-convergence a ConvergenceWarning; verbose output goes to
logging, never to stdout."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from fastdensity.mixture import GaussianMixture
from mixture_helpers import blobs, sklearn_init

X, _ = blobs(n=200, d=2, k=2, seed=40)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(n_components=0), ValueError, "n_components must be a positive integer; got 0"),
        (dict(n_components=1.5), ValueError, "n_components must be a positive integer; got 1.5"),
        (dict(covariance_type="banded"), ValueError, "covariance_type must be one of"),
        (dict(tol=-1.0), ValueError, "tol must be a non-negative finite number; got -1.0"),
        (dict(reg_covar=-1e-6), ValueError, "reg_covar must be a non-negative finite number"),
        (dict(max_iter=-1), ValueError, "max_iter must be a non-negative integer"),
        (dict(n_init=0), ValueError, "n_init must be a positive integer"),
        (dict(init_params="spectral"), ValueError, "init_params must be one of"),
        (dict(warm_start="yes"), TypeError, "warm_start must be a bool"),
        (dict(verbose=-1), ValueError, "verbose must be a non-negative integer"),
        (dict(verbose_interval=0), ValueError, "verbose_interval must be a positive integer"),
        (dict(learning_decay=1.5), ValueError, "learning_decay must be a finite number in \\(0.5, 1.0\\]"),
        (dict(backend="gpu"), ValueError, "backend must be one of"),
        (dict(random_state="seed"), ValueError, "cannot be used to seed"),
        (dict(n_jobs=0), ValueError, "n_jobs must not be 0"),
    ],
)
def test_bad_parameters(params, error, match):
    with pytest.raises(error, match=match):
        GaussianMixture(**params).fit(X)


def test_cuda_backend_is_not_available_yet():
    with pytest.raises(NotImplementedError, match="backend='cuda' is not available"):
        GaussianMixture(backend="cuda").fit(X)


@pytest.mark.parametrize(
    "data, match",
    [
        (np.array([1.0, 2.0, 3.0]), "Expected 2D array"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), "NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), "infinity"),
        (np.ones((1, 2)), "minimum of 2 is required"),
        (np.ones((0, 2)), "minimum of 2 is required"),
    ],
)
def test_bad_data(data, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture().fit(data)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match="Expected n_samples >= n_components but got n_components = 5, n_samples = 3"):
        GaussianMixture(5).fit(X[:3])
    w = np.zeros(len(X))
    w[:3] = 1.0
    with pytest.raises(ValueError, match="positive sample_weight"):
        GaussianMixture(5).fit(X, sample_weight=w)


@pytest.mark.parametrize(
    "weights, match",
    [
        (-np.ones(200), "Negative values in data passed to `sample_weight`"),
        (np.ones(199), "sample_weight.shape == \\(199,\\), expected \\(200,\\)"),
        (np.zeros(200), "Sample weights must contain at least one non-zero number"),
        (np.full(200, np.nan), "NaN"),
    ],
)
def test_bad_sample_weight(weights, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture().fit(X, sample_weight=weights)


def test_bad_initial_parameters():
    good = sklearn_init(X, 2, "full")
    with pytest.raises(ValueError, match="'weights' should be normalized"):
        GaussianMixture(2, weights_init=[0.5, 0.6]).fit(X)
    with pytest.raises(ValueError, match="'weights' should be in the range \\[0, 1\\]"):
        GaussianMixture(2, weights_init=[1.5, -0.5]).fit(X)
    with pytest.raises(ValueError, match="'weights' should have the shape of \\(2,\\)"):
        GaussianMixture(2, weights_init=[1.0]).fit(X)
    with pytest.raises(ValueError, match="'means' should have the shape of \\(2, 2\\)"):
        GaussianMixture(2, means_init=np.zeros((3, 2))).fit(X)
    bad = good["precisions_init"].copy()
    bad[0] = -np.eye(2)
    with pytest.raises(ValueError, match="'full precision' should be symmetric, positive-definite"):
        GaussianMixture(2, precisions_init=bad).fit(X)
    with pytest.raises(ValueError, match="'diag precision' should be positive"):
        GaussianMixture(2, covariance_type="diag", precisions_init=-np.ones((2, 2))).fit(X)
    with pytest.raises(ValueError, match="'spherical precision' should have the shape of \\(2,\\)"):
        GaussianMixture(2, covariance_type="spherical", precisions_init=np.ones(3)).fit(X)


def test_parameters_are_not_modified_by_fit():
    init = sklearn_init(X, 2, "full")
    weights = [0.5, 0.5]
    model = GaussianMixture(2, weights_init=weights, means_init=init["means_init"], max_iter=2, tol=0.0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model.fit(X)
    assert model.weights_init is weights


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_singular_covariance_names_the_remedies(covariance_type):
    """Two identical points per component and no regularisation: the covariance is singular."""
    data = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 5.0]])
    model = GaussianMixture(2, covariance_type=covariance_type, reg_covar=0.0, random_state=0)
    with pytest.raises(ValueError, match="ill-defined empirical covariance.*decrease the number of components, "
                                         "increase reg_covar, or scale the input data.*reg_covar=0.0"):
        model.fit(data)


def test_convergence_warning_when_em_does_not_converge():
    with pytest.warns(ConvergenceWarning, match="Best performing initialization did not converge"):
        model = GaussianMixture(2, max_iter=1, random_state=0).fit(X)
    assert model.converged_ is False and model.n_iter_ == 1


def test_not_fitted():
    model = GaussianMixture()
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(NotFittedError, match="is not fitted yet"):
            getattr(model, method)(X)
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        model.sample(3)


def test_wrong_number_of_features_after_fit():
    model = GaussianMixture(random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2 features"):
        model.predict(np.ones((4, 3)))


def test_bad_sample_size():
    model = GaussianMixture(random_state=0).fit(X)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        model.sample(0)


def test_verbose_goes_to_logging_not_stdout(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="fastdensity.mixture"):
        GaussianMixture(2, verbose=2, verbose_interval=1, random_state=0, tol=1e-2).fit(X)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Initialization 0") for m in messages)
    assert any("Iteration 1" in m and "ll change" in m for m in messages)
    assert any(m.startswith("Initialization converged") for m in messages)
    assert capsys.readouterr().out == ""


def test_a_failed_fit_leaves_the_model_as_it_was():
    model = GaussianMixture(2, random_state=0).fit(X)
    before = {name: value.copy() for name, value in vars(model).items() if isinstance(value, np.ndarray)}
    singular = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 5.0]])
    model.set_params(reg_covar=0.0)
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        model.fit(singular)
    with pytest.raises(ValueError, match="X has 3 features"):
        model.partial_fit(np.ones((5, 3)))
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(model, name), value)
    assert model.n_features_in_ == 2
