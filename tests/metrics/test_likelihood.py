"""log_likelihood with fastdensity and scikit-learn estimators, bits per dimension, images."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.neighbors import KernelDensity as SkKernelDensity

from fastdensity import GaussianMixture, KernelDensity
from fastdensity.metrics import log_likelihood


class BernoulliPixels:
    """Independent Bernoulli(p) pixels: log p(x) = Σ x log p + (1 − x) log(1 − p), any image shape."""

    def __init__(self, p):
        self.p = p

    def score_samples(self, X):
        X = np.asarray(X).reshape(len(X), -1)
        return (X * math.log(self.p) + (1 - X) * math.log(1 - self.p)).sum(1)


def test_fastdensity_gaussian_mixture_against_scipy():
    rng = np.random.default_rng(0)
    X_train, X_test = rng.standard_normal((400, 3)), rng.standard_normal((150, 3))
    gm = GaussianMixture(n_components=1, random_state=0).fit(X_train)
    result = log_likelihood(gm, X_test)
    oracle = stats.multivariate_normal(gm.means_[0], gm.covariances_[0]).logpdf(X_test)
    np.testing.assert_allclose(result.per_sample, oracle, rtol=1e-10)
    assert result.mean == pytest.approx(oracle.mean(), rel=1e-10)
    assert result.sem == pytest.approx(oracle.std(ddof=1) / math.sqrt(150), rel=1e-10)
    assert result.n_dims == 3
    assert result.bits_per_dim == pytest.approx(-oracle.mean() / (3 * math.log(2)), rel=1e-10)
    assert result.bits_per_dim_sem == pytest.approx(result.sem / (3 * math.log(2)), rel=1e-12)


def test_fastdensity_kde_and_sklearn_kde_agree():
    rng = np.random.default_rng(1)
    X_train, X_test = rng.standard_normal((300, 2)), rng.standard_normal((80, 2))
    ours = log_likelihood(KernelDensity(bandwidth=0.4).fit(X_train), X_test)
    theirs = log_likelihood(SkKernelDensity(bandwidth=0.4).fit(X_train), X_test)
    np.testing.assert_allclose(ours.per_sample, theirs.per_sample, rtol=1e-9)
    assert ours.mean_nats == ours.mean


@pytest.mark.parametrize("shape", [(20, 6, 5), (20, 3, 4, 4)])
def test_images_count_every_pixel(shape):
    X = (np.random.default_rng(2).random(shape) > 0.5).astype(np.float64)
    result = log_likelihood(BernoulliPixels(0.5), X)
    assert result.n_dims == math.prod(shape[1:])
    assert result.bits_per_dim == pytest.approx(1.0, rel=1e-12)  # a fair coin per pixel: 1 bit


def test_score_kwargs_are_passed_through():
    class Scaled:
        def score_samples(self, X, factor=1.0):
            return -factor * np.ones(len(X))

    assert log_likelihood(Scaled(), np.zeros((4, 2)), factor=3.0).mean == -3.0


def test_torch_scores_are_accepted():
    torch = pytest.importorskip("torch")

    class TorchModel:
        def score_samples(self, X):
            return -torch.as_tensor(X).pow(2).sum(1)

    X = np.arange(12.0).reshape(4, 3)
    np.testing.assert_allclose(log_likelihood(TorchModel(), torch.from_numpy(X)).per_sample, -(X**2).sum(1))


def test_errors_and_warnings():
    class Constant:
        def __init__(self, values):
            self.values = np.asarray(values, dtype=float)

        def score_samples(self, X):
            return self.values

    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match="returned NaN for 1 of 3"):
        log_likelihood(Constant([0.0, np.nan, 1.0]), X)
    with pytest.warns(RuntimeWarning, match="1 of 3 log-likelihoods are infinite"):
        assert log_likelihood(Constant([0.0, -np.inf, 1.0]), X).mean == -np.inf
    with pytest.raises(ValueError, match="returned 2 values for 3 samples"):
        log_likelihood(Constant([0.0, 1.0]), X)
    with pytest.raises(TypeError, match="score_samples"):
        log_likelihood(object(), X)
    with pytest.raises(ValueError, match="must have shape"):
        log_likelihood(Constant([0.0]), np.zeros(3))
    assert math.isnan(log_likelihood(Constant([1.0]), np.zeros((1, 2))).sem)
