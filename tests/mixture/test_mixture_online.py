"""partial_fit: online EM with the documented step sizes η_0 = 1, η_t = (t + τ₀)^(−κ)."""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity.mixture import GaussianMixture
from mixture_helpers import COVARIANCE_TYPES, blobs, fit_quietly, max_rel, sklearn_init


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_first_step_is_one_em_iteration(covariance_type):
    """η_0 = 1: the first batch's statistics replace everything, as one EM iteration does."""
    X, _ = blobs(n=800, d=3, k=3, seed=20)
    init = sklearn_init(X, 3, covariance_type)
    online = GaussianMixture(3, covariance_type=covariance_type, **init).partial_fit(X)
    batch = fit_quietly(GaussianMixture(3, covariance_type=covariance_type, max_iter=1, **init), X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        assert max_rel(getattr(online, name), getattr(batch, name)) < 1e-12, name
    assert online.lower_bound_ == pytest.approx(batch.lower_bound_, rel=1e-12)
    assert online.n_steps_ == 1 and online.converged_ is False


def _moments(batches, coefficients):
    """Mean and covariance of the mixture Σ c_t (batch t's empirical distribution)."""
    mean = sum(c * b.mean(axis=0) for c, b in zip(coefficients, batches))
    second = sum(c * (b - mean).T @ (b - mean) / len(b) for c, b in zip(coefficients, batches))
    return mean, second


@pytest.mark.parametrize("decay, offset", [(1.0, 1.0), (0.6, 1.0), (0.75, 4.0)])
def test_step_sizes_on_a_single_component(decay, offset):
    """With one component the responsibilities are 1 and the statistics are plain moments, so
    the parameters after t batches are the moments of Σ c_t batch_t with the c_t the schedule
    gives: c = (1−η_1)…, η_t = (t + offset)^(−decay). decay=1, offset=1 is the plain average."""
    rng = np.random.default_rng(21)
    batches = [rng.normal(loc=t, scale=1 + 0.2 * t, size=(200, 2)) for t in range(5)]
    model = GaussianMixture(1, learning_decay=decay, learning_offset=offset, reg_covar=0.0)
    coefficients = []
    for t, batch in enumerate(batches):
        model.partial_fit(batch)
        eta = 1.0 if t == 0 else (t + offset) ** (-decay)
        coefficients = [c * (1 - eta) for c in coefficients] + [eta]
        mean, cov = _moments(batches[: t + 1], coefficients)
        np.testing.assert_allclose(model.means_[0], mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(model.covariances_[0], cov, rtol=1e-10)
    if decay == 1.0 and offset == 1.0:
        np.testing.assert_allclose(model.means_[0], np.vstack(batches).mean(axis=0), rtol=1e-12)
    assert model.n_steps_ == len(batches)


def test_partial_fit_after_fit_continues_from_the_fitted_parameters():
    """After fit, the fitted parameters count as the statistics at t = 1 (η_1 = 1/2 here)."""
    rng = np.random.default_rng(22)
    A = rng.normal(loc=0.0, size=(300, 2))
    B = rng.normal(loc=3.0, scale=2.0, size=(300, 2))
    model = GaussianMixture(1, learning_decay=1.0, learning_offset=1.0, reg_covar=1e-6).fit(A)
    model.partial_fit(B)
    mean, cov = _moments([A, B], [0.5, 0.5])
    np.testing.assert_allclose(model.means_[0], mean, rtol=1e-12)
    np.testing.assert_allclose(model.covariances_[0], cov + 1e-6 * np.eye(2), rtol=1e-10)
    assert model.n_steps_ == 2


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_stream_converges_near_the_batch_solution(covariance_type):
    X, _ = blobs(n=40000, d=3, k=3, seed=23, separation=6.0)
    batch = fit_quietly(GaussianMixture(3, covariance_type=covariance_type, random_state=0), X)
    online = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    for chunk in np.array_split(X, 80):
        online.partial_fit(chunk)
    order_b, order_o = np.argsort(batch.means_[:, 0]), np.argsort(online.means_[:, 0])
    np.testing.assert_allclose(online.means_[order_o], batch.means_[order_b], atol=0.1)
    np.testing.assert_allclose(online.weights_[order_o], batch.weights_[order_b], atol=0.02)
    np.testing.assert_allclose(online.covariances_[order_o], batch.covariances_[order_b], atol=0.15)
    assert online.score(X) == pytest.approx(batch.score(X), abs=0.01)


def test_partial_fit_with_sample_weight():
    """Integer weights act as repeated rows in online EM too."""
    X, _ = blobs(n=300, d=2, k=2, seed=24)
    w = np.random.default_rng(7).integers(0, 3, size=len(X))
    init = sklearn_init(X, 2, "full")
    a = GaussianMixture(2, **init).partial_fit(X[:150], sample_weight=w[:150]).partial_fit(
        X[150:], sample_weight=w[150:])
    b = GaussianMixture(2, **init).partial_fit(np.repeat(X[:150], w[:150], axis=0)).partial_fit(
        np.repeat(X[150:], w[150:], axis=0))
    for name in ("weights_", "means_", "covariances_"):
        assert max_rel(getattr(a, name), getattr(b, name)) < 1e-10, name


def test_partial_fit_errors():
    X, _ = blobs(n=100, d=2, k=2, seed=25)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).partial_fit(X[:3])
    model = GaussianMixture(2, random_state=0).partial_fit(X)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(np.ones((10, 3)))
    with pytest.raises(ValueError, match="learning_decay"):
        GaussianMixture(2, learning_decay=0.5).partial_fit(X)
    with pytest.raises(ValueError, match="learning_offset"):
        GaussianMixture(2, learning_offset=-1.0).partial_fit(X)
