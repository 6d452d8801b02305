"""init_params="kmeans" on fastdensity's own k-means (_kmeans_cpu), and the initial statistics of
every init_params on the fused engine (_mixture_cpu.gmm_stats)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import fastdensity
from fastdensity.mixture import GaussianMixture
from fastdensity.mixture import _kmeans_cpu as km
from fastdensity.mixture import _mixture_cpu as engine
from fastdensity.mixture._gaussian_params import stats_about_centres
from mixture_helpers import COVARIANCE_TYPES, blobs, fit_quietly, max_rel


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_does_not_depend_on_the_number_of_threads(weighted):
    rng = np.random.default_rng(80)
    X, _ = blobs(n=engine.CHUNK * engine.PARALLEL_MIN_CHUNKS + 777, d=5, k=6, seed=80)
    w = rng.uniform(0.2, 2.0, size=len(X)) if weighted else None
    with fastdensity.threads(1):
        one = km.kmeans(X, 6, w, np.random.RandomState(3))
    with fastdensity.threads(2):
        two = km.kmeans(X, 6, w, np.random.RandomState(3))
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert one[2] == two[2]


@pytest.mark.parametrize("seed", range(4))
def test_kmeans_finds_sklearns_clusters_on_blobs(seed):
    """The same k-means++ draws and stopping rule: on separated blobs the same partition."""
    X, _ = blobs(n=3000, d=4, k=5, seed=81 + seed, separation=6.0)
    centres, labels, _ = km.kmeans(X, 5, None, np.random.RandomState(seed))
    theirs = KMeans(5, n_init=1, random_state=np.random.RandomState(seed)).fit(X)
    np.testing.assert_array_equal(labels, theirs.labels_)
    assert max_rel(centres, theirs.cluster_centers_) < 1e-10


def test_kmeans_labels_are_nearest_centres_and_centres_their_means():
    X, _ = blobs(n=2000, d=3, k=4, seed=85, separation=2.0)
    centres, labels, _ = km.kmeans(X, 4, None, np.random.RandomState(0))
    d2 = ((X[:, None, :] - centres[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, np.argmin(d2, axis=1))
    means = np.stack([X[labels == c].mean(axis=0) for c in range(4)])
    assert max_rel(centres, means) < 1e-3  # converged to tol: the centres move by less than that


def test_empty_clusters_are_relocated():
    """Duplicate seeds (three distinct rows, four clusters): an empty cluster takes a far row."""
    X = np.repeat(np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]), 50, axis=0)
    X = X + np.random.default_rng(86).normal(scale=1e-3, size=X.shape)
    centres, labels, _ = km.kmeans(X, 4, None, np.random.RandomState(0))
    assert np.all(np.isfinite(centres)) and labels.min() >= 0 and labels.max() < 4


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_fit_quality_at_least_sklearns(covariance_type, seed):
    """The lower bound after the fit from our k-means is at least scikit-learn's (from its KMeans)."""
    X, _ = blobs(n=2000, d=3, k=4, seed=90 + seed, separation=3.0)
    params = dict(covariance_type=covariance_type, random_state=seed, max_iter=100)
    ours = fit_quietly(GaussianMixture(4, **params), X)
    theirs = fit_quietly(SkGaussianMixture(4, **params), X)
    assert ours.lower_bound_ >= theirs.lower_bound_ - 1e-3 * abs(theirs.lower_bound_)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_engine_statistics_of_given_responsibilities_match_numpy(covariance_type, weighted):
    rng = np.random.default_rng(87)
    n, d, k = engine.CHUNK * 2 + 301, 5, 3
    X = rng.normal(size=(n, d)) * 2.0 + 7.0
    w = rng.uniform(0.1, 3.0, size=n) if weighted else None
    shift = X.mean(axis=0)
    labels = rng.integers(-1, k, size=n)
    resp = rng.uniform(size=(n, k))
    resp /= resp.sum(axis=1)[:, None]
    one_hot = np.zeros((n, k))
    one_hot[labels >= 0, labels[labels >= 0]] = 1.0
    for given, dense in ((dict(labels=labels), one_hot), (dict(resp=resp), resp)):
        R, Sx, Sxx, centres = stats_about_centres(X, w, dense, covariance_type, shift)
        got = engine.gmm_stats(X, w, centres, covariance_type, shift, **given)
        for a, b in zip(got, (R, Sx, Sxx)):
            assert max_rel(a, b) < 1e-12 or np.max(np.abs(a - b)) < 1e-9 * np.max(np.abs(Sxx))


def test_gmm_stats_wants_one_kind_of_responsibilities():
    with pytest.raises(ValueError, match="exactly one of labels and resp"):
        engine.gmm_stats(np.ones((3, 2)), None, np.zeros((1, 2)), "diag", np.zeros(2))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_engine_statistics_do_not_depend_on_the_number_of_threads(covariance_type):
    rng = np.random.default_rng(88)
    n = engine.CHUNK * engine.PARALLEL_MIN_CHUNKS + 123
    X = rng.normal(size=(n, 4))
    labels = rng.integers(0, 3, size=n)
    centres = rng.normal(size=(3, 4))
    with fastdensity.threads(1):
        one = engine.gmm_stats(X, None, centres, covariance_type, X.mean(axis=0), labels=labels)
    with fastdensity.threads(2):
        two = engine.gmm_stats(X, None, centres, covariance_type, X.mean(axis=0), labels=labels)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
