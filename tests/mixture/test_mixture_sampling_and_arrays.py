"""sample(), and torch CPU tensors in → torch tensors out."""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity.mixture import GaussianMixture
from mixture_helpers import COVARIANCE_TYPES, blobs, fit_quietly


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_moments(covariance_type):
    X, _ = blobs(n=2000, d=3, k=2, seed=50, separation=6.0)
    model = fit_quietly(GaussianMixture(2, covariance_type=covariance_type, random_state=0), X)
    samples, labels = model.sample(40000)
    assert samples.shape == (40000, 3) and labels.shape == (40000,)
    assert samples.dtype == np.float64 and labels.dtype == np.int64
    assert np.all(np.diff(labels) >= 0)  # grouped by component, as in scikit-learn
    covariances = {
        "full": lambda c: c,
        "tied": lambda c: np.broadcast_to(c, (2, 3, 3)),
        "diag": lambda c: np.stack([np.diag(v) for v in c]),
        "spherical": lambda c: np.stack([v * np.eye(3) for v in c]),
    }[covariance_type](model.covariances_)
    for c in range(2):
        part = samples[labels == c]
        assert len(part) / len(samples) == pytest.approx(model.weights_[c], abs=0.02)
        sd = np.sqrt(np.diag(covariances[c]))
        np.testing.assert_allclose(part.mean(axis=0), model.means_[c], atol=float(6 * sd.max() / np.sqrt(len(part))))
        np.testing.assert_allclose(np.cov(part.T), covariances[c], atol=float(0.1 * sd.max() ** 2))


def test_sample_random_state():
    X, _ = blobs(n=300, d=2, k=2, seed=51)
    model = GaussianMixture(2, random_state=3).fit(X)
    a, _ = model.sample(10)
    b, _ = model.sample(10)
    np.testing.assert_array_equal(a, b)  # an int random_state gives the same draw (scikit-learn)
    c, _ = model.sample(10, random_state=4)
    d, _ = model.sample(10, random_state=np.random.RandomState(4))
    np.testing.assert_array_equal(c, d)
    assert not np.array_equal(a, c)


def test_torch_cpu_tensors_in_torch_out():
    torch = pytest.importorskip("torch")
    X, _ = blobs(n=400, d=2, k=2, seed=52)
    Xt = torch.from_numpy(X)
    model = GaussianMixture(2, random_state=0)
    labels = model.fit_predict(Xt)
    assert isinstance(labels, torch.Tensor)
    reference = GaussianMixture(2, random_state=0).fit(X)
    np.testing.assert_array_equal(labels.numpy(), reference.predict(X))
    for method in ("predict", "predict_proba", "score_samples"):
        out = getattr(model, method)(Xt)
        assert isinstance(out, torch.Tensor), method
        np.testing.assert_array_equal(out.numpy(), getattr(reference, method)(X))
    assert model.score(Xt) == reference.score(X)
    w = torch.ones(400, dtype=torch.float64)
    weighted = GaussianMixture(2, random_state=0).fit(Xt, sample_weight=w)
    np.testing.assert_array_equal(weighted.means_, reference.means_)
