"""KNNDensity: the density formula, leave-one-out against scikit-learn, the estimator rules
(check_estimator, errors, array types, threads)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.special import gammaln
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastdensity.knn import KNNDensity


def log_knn_density(r_k, k, n, d):
    """log of k / (n V_d r_k^d) computed directly (no log-space shortcut beyond the gamma)."""
    log_vd = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1)
    return np.log(k / n) - log_vd - d * np.log(r_k)


@parametrize_with_checks([KNNDensity(), KNNDensity(n_neighbors=3, algorithm="kd_tree", n_jobs=1)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
def test_density_formula(algorithm):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 3))
    Q = rng.standard_normal((300, 3))
    est = KNNDensity(7, algorithm=algorithm).fit(X)
    r = np.sort(np.linalg.norm(Q[:, None] - X[None], axis=-1), axis=1)[:, 6]
    np.testing.assert_allclose(est.score_samples(Q), log_knn_density(r, 7, 2000, 3), rtol=1e-12)
    # In 1-D it is k / (2 n r_k) exactly.
    est1 = KNNDensity(4).fit(X[:, :1])
    r1 = np.sort(np.abs(Q[:, :1] - X[:, 0][None]), axis=1)[:, 3]
    np.testing.assert_allclose(np.exp(est1.score_samples(Q[:, :1])), 4 / (2 * 2000 * r1), rtol=1e-12)


def test_score_is_the_sum():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 2))
    est = KNNDensity(5).fit(X)
    assert est.score(X[:50]) == pytest.approx(float(np.sum(est.score_samples(X[:50]))), rel=1e-12)
    assert est.score() == pytest.approx(float(np.sum(est.score_samples())), rel=1e-12)


def test_large_dimension_does_not_overflow():
    rng = np.random.default_rng(2)
    d = 200
    X = 30.0 * rng.standard_normal((400, d))  # r_k ≈ 600: r_k^d overflows float64 by far
    Q = 30.0 * rng.standard_normal((20, d))
    log_p = KNNDensity(5).fit(X).score_samples(Q)
    assert np.all(np.isfinite(log_p))
    r = np.sort(np.linalg.norm(Q[:, None] - X[None], axis=-1), axis=1)[:, 4]
    np.testing.assert_allclose(log_p, log_knn_density(r, 5, 400, d), rtol=1e-10)


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
@pytest.mark.parametrize("d", [2, 16])
def test_leave_one_out_matches_scikit_learn(d, algorithm):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((700, d))
    est = KNNDensity(6, algorithm=algorithm).fit(X)
    dist, ind = est.kneighbors()
    ref_d, ref_i = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(X).kneighbors()
    np.testing.assert_allclose(dist, ref_d, rtol=1e-10)
    np.testing.assert_array_equal(ind, ref_i)
    # leave-one-out density: n − 1 remaining points
    np.testing.assert_allclose(est.score_samples(), log_knn_density(ref_d[:, -1], 6, 699, d), rtol=1e-9)


def test_kneighbors_api():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 4))
    est = KNNDensity(5).fit(X)
    ind = est.kneighbors(X[:10], n_neighbors=3, return_distance=False)
    assert ind.shape == (10, 3)
    np.testing.assert_array_equal(ind[:, 0], np.arange(10))  # each point is its own nearest
    dist, ind = est.kneighbors(X[:10])
    assert dist.shape == ind.shape == (10, 5) and np.all(np.diff(dist, axis=1) >= 0)


def test_float32_in_float32_out():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((500, 3)).astype(np.float32)
    est = KNNDensity(5).fit(X)
    out = est.score_samples(X[:20])
    assert out.dtype == np.float32
    ref = KNNDensity(5).fit(X.astype(np.float64)).score_samples(X[:20].astype(np.float64))
    np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_duplicates_give_inf_with_a_warning():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((100, 2))
    X = np.vstack([X, X[:2], X[:2]])  # rows 0 and 1 appear three times
    est = KNNDensity(3).fit(X)
    match = r"2 of 5 rows have their k-th nearest neighbour \(k = 3\) at distance 0"
    with pytest.warns(RuntimeWarning, match=match):
        out = est.score_samples(X[:5])
    assert np.all(np.isposinf(out[:2])) and np.all(np.isfinite(out[2:]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KNNDensity(4).fit(X).score_samples(X[:5])  # the 4th neighbour is a different point


def test_algorithms_agree_and_auto_picks_by_dimension():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((5000, 2))
    Q = rng.standard_normal((200, 2))
    scores = [KNNDensity(10, algorithm=a).fit(X).score_samples(Q) for a in ("brute", "kd_tree")]
    np.testing.assert_array_equal(scores[0], scores[1])
    assert KNNDensity(10).fit(X).effective_algorithm_ == "kd_tree"
    assert KNNDensity(10).fit(rng.standard_normal((5000, 10))).effective_algorithm_ == "brute"
    assert KNNDensity(10).fit(X[:100]).effective_algorithm_ == "brute"


def test_thread_count_does_not_change_scores():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((3000, 16))  # brute force (auto)
    a = KNNDensity(10, n_jobs=1).fit(X).score_samples()
    b = KNNDensity(10, n_jobs=2).fit(X).score_samples()
    np.testing.assert_array_equal(a, b)


def test_torch_tensors_in_and_out():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    X = rng.standard_normal((300, 3))
    est = KNNDensity(4).fit(torch.from_numpy(X))
    out = est.score_samples(torch.from_numpy(X[:7]))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_array_equal(out.numpy(), KNNDensity(4).fit(X).score_samples(X[:7]))
    dist, ind = est.kneighbors(torch.from_numpy(X[:7]))
    assert isinstance(dist, torch.Tensor) and isinstance(ind, torch.Tensor)


@pytest.mark.parametrize(
    "params, match, error",
    [
        ({"n_neighbors": 0}, "n_neighbors must be a positive integer; got 0", ValueError),
        ({"n_neighbors": 2.5}, "n_neighbors must be a positive integer; got 2.5", TypeError),
        ({"algorithm": "ball_tree"}, r"algorithm must be one of \('auto', 'brute', 'kd_tree'\)", ValueError),
        ({"backend": "gpu"}, "backend must be one of", ValueError),
        ({"n_jobs": 0}, "n_jobs must not be 0", ValueError),
        (
            {"n_neighbors": 51},
            r"n_neighbors = 51 is larger than the number of training points \(n_samples = 50\)",
            ValueError,
        ),
    ],
)
def test_bad_parameters(params, match, error):
    X = np.random.default_rng(10).standard_normal((50, 2))
    with pytest.raises(error, match=match):
        KNNDensity(**params).fit(X)


def test_bad_calls():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((50, 2))
    est = KNNDensity(50).fit(X)
    with pytest.raises(ValueError, match=r"leave-one-out \(X=None\) needs n_neighbors <= n_samples - 1 = 49"):
        est.score_samples()
    with pytest.raises(ValueError, match="n_neighbors = 51 is larger than n_samples = 50"):
        est.kneighbors(X, n_neighbors=51)
    with pytest.raises(ValueError, match="X has 3 features, but KNNDensity is expecting 2 features"):
        est.score_samples(rng.standard_normal((5, 3)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.score_samples(np.array([[np.nan, 0.0]]))
    with pytest.raises(NotImplementedError, match="backend='cuda' is not available"):
        KNNDensity(backend="cuda").fit(X)


@pytest.mark.parametrize("scale", [1e-10, 0.1])
def test_queries_near_the_float64_limit_against_small_scale_data_warn_nothing(scale):
    # (q - centre) * inv_scale overflowed to inf with a RuntimeWarning before the exact fallback
    X = np.random.default_rng(0).normal(size=(50, 2)) * scale
    Q = np.array([[np.finfo(np.float64).max, 0.0], [0.0, -np.finfo(np.float64).max], [0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        brute = KNNDensity(n_neighbors=5, algorithm="brute").fit(X).score_samples(Q)
    tree = KNNDensity(n_neighbors=5, algorithm="kd_tree").fit(X).score_samples(Q)
    np.testing.assert_array_equal(brute[:2], [-np.inf, -np.inf])
    np.testing.assert_allclose(brute, tree, rtol=1e-12)
