"""FID against an independent ``scipy.linalg.sqrtm`` computation, its invariances, the streaming
statistics and the warnings for numerically wrong input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg

from fastdensity.metrics import FeatureStatistics, fid, frechet_distance


def reference_fid(X, Y):
    """The old reference implementation (TTUR / pytorch-fid): np.cov and scipy's sqrtm of Σ1 Σ2."""
    mu1, mu2 = X.mean(0), Y.mean(0)
    s1, s2 = np.cov(X, rowvar=False), np.cov(Y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def feature_pair(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3
    Y = rng.standard_normal((n + 3, d)) * 1.1 + 0.2
    return X, Y


# Sample counts and dimensions, rank-deficient (n < d) included.
SWEEP = [(5, 3), (10, 10), (20, 64), (64, 20), (100, 100), (30, 128), (500, 32), (40, 256)]


@pytest.mark.parametrize("n, d", SWEEP)
def test_matches_sqrtm_reference(n, d):
    X, Y = feature_pair(n, d, seed=n * 1000 + d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no spurious warning on valid input
        value = fid(X, Y)
    assert value == pytest.approx(reference_fid(X, Y), rel=1e-6)


@pytest.mark.parametrize("n, d", SWEEP)
def test_same_set_is_zero_and_symmetric(n, d):
    X, Y = feature_pair(n, d, seed=d)
    trace = np.trace(np.cov(X, rowvar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert abs(fid(X, X)) <= 1e-9 * trace
        assert fid(X, Y) == pytest.approx(fid(Y, X), rel=1e-9)


def test_commuting_covariances_closed_form():
    # Diagonal covariances: tr (Σ1 Σ2)^½ = Σ √(a_i b_i), so FID = ‖Δμ‖² + Σ (√a_i − √b_i)².
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.0, 3.0, 50), rng.uniform(0.0, 3.0, 50)
    a[:10] = 0.0  # singular
    mu1, mu2 = rng.standard_normal(50), rng.standard_normal(50)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_ill_conditioned_covariance_keeps_its_digits():
    # Condition number 1e6: tr (Σ Σ)^½ = tr Σ must hold to rounding. Eigenvalues of Σ^½ Σ Σ^½
    # (the squared spectrum) would lose half the digits here (error ~ 1e-6 of the trace).
    rng = np.random.default_rng(8)
    U, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    X = rng.standard_normal((1000, 200)) * np.logspace(0, -6, 200) @ U.T * 3
    s = np.cov(X, rowvar=False)
    mu = X.mean(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert frechet_distance(mu, s, mu, s) <= 1e-12 * np.trace(s)


def test_rotation_invariance():
    X, Y = feature_pair(80, 12, seed=5)
    Q, _ = np.linalg.qr(np.random.default_rng(6).standard_normal((12, 12)))
    assert fid(X @ Q, Y @ Q) == pytest.approx(fid(X, Y), rel=1e-9)


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_streaming_statistics_equal_one_shot(batch_size):
    X, Y = feature_pair(300, 16, seed=1)
    stats = FeatureStatistics.from_features(X, batch_size=batch_size)
    assert stats.n == 300
    np.testing.assert_allclose(stats.mean, X.mean(0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(stats.cov, np.cov(X, rowvar=False), rtol=1e-11, atol=1e-13)
    # fid of statistics (any batch size) equals fid of the arrays
    assert fid(stats, FeatureStatistics.from_features(Y, batch_size=batch_size)) == pytest.approx(fid(X, Y), rel=1e-10)
    assert fid(stats, Y) == pytest.approx(fid(X, Y), rel=1e-10)


def test_merge_equals_update_of_concatenation():
    X, _ = feature_pair(200, 6, seed=2)
    a = FeatureStatistics().update(X[:37]).update(X[37:90])
    b = FeatureStatistics().update(X[90:])
    a.merge(b)
    np.testing.assert_allclose(a.cov, np.cov(X, rowvar=False), rtol=1e-12, atol=1e-14)
    assert a.n == 200 and a.merge(FeatureStatistics()).n == 200


def test_streaming_is_stable_far_from_the_origin():
    # Accumulating Σx and Σxxᵀ would lose every digit here (offset 1e8, spread 1e-2).
    rng = np.random.default_rng(4)
    Z = rng.standard_normal((2000, 3)) * 1e-2
    X = Z + 1e8
    stats = FeatureStatistics.from_features(X, batch_size=13)
    np.testing.assert_allclose(stats.cov, np.cov(X, rowvar=False), rtol=1e-9, atol=1e-14)


def test_asymmetric_covariance_warns():
    s = np.eye(4)
    bad = s.copy()
    bad[0, 1] = 0.5
    with pytest.warns(RuntimeWarning, match="sigma2 is not symmetric"):
        frechet_distance(np.zeros(4), s, np.zeros(4), bad)


def test_indefinite_covariance_warns():
    s = np.diag([1.0, 1.0, -0.5])
    with pytest.warns(RuntimeWarning, match="sigma1 has a clearly negative eigenvalue"):
        frechet_distance(np.zeros(3), s, np.zeros(3), np.eye(3))
    with pytest.warns(RuntimeWarning, match="sigma2 has a clearly negative eigenvalue"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), s)


def test_rounding_only_input_gives_no_warning():
    # A PSD rank-1 covariance has eigenvalues ±rounding: clipped silently.
    v = np.random.default_rng(7).standard_normal(30)
    s = np.outer(v, v)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert frechet_distance(v, s, v, s) == pytest.approx(0.0, abs=1e-9 * np.trace(s))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_statistics_rejected(bad):
    s = np.eye(3)
    mu = np.array([0.0, bad, 0.0])
    with pytest.raises(ValueError, match="mu1 contains NaN or infinite"):
        frechet_distance(mu, s, np.zeros(3), s)


def test_shape_errors():
    with pytest.raises(ValueError, match="sigma2 must have shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="mu1 and mu2 must be 1-D"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(3))
    with pytest.raises(ValueError, match="features_real needs at least 2 samples"):
        fid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="they must match"):
        fid(np.ones((4, 3)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="2-D array"):
        fid(np.ones(4), np.ones((5, 2)))
    with pytest.raises(ValueError, match="covariance needs at least 2 samples"):
        FeatureStatistics().update(np.ones((1, 3))).cov
    with pytest.raises(ValueError, match="batch has 2 features"):
        FeatureStatistics().update(np.ones((3, 3))).update(np.ones((3, 2)))


def test_torch_cpu_tensors_match_numpy():
    torch = pytest.importorskip("torch")
    X, Y = feature_pair(50, 20, seed=9)
    Xt, Yt = torch.from_numpy(X).float(), torch.from_numpy(Y).float()
    expected = fid(Xt.double().numpy(), Yt.double().numpy())
    assert fid(Xt, Yt) == pytest.approx(expected, rel=1e-10)
    stats = FeatureStatistics.from_features(Xt, batch_size=8)
    assert isinstance(stats.cov, torch.Tensor) and stats.cov.dtype == torch.float64
    np.testing.assert_allclose(stats.cov.numpy(), np.cov(Xt.double().numpy(), rowvar=False), rtol=1e-10, atol=1e-12)
    with pytest.raises(TypeError, match="keep one array type"):
        stats.update(X[:3])


@pytest.mark.gpu
def test_cuda_inputs_match_cpu():
    X, Y = feature_pair(200, 40, seed=10)
    expected = fid(X, Y)
    import cupy

    assert fid(cupy.asarray(X), cupy.asarray(Y)) == pytest.approx(expected, rel=1e-9)
    torch = pytest.importorskip("torch")
    Xt, Yt = torch.from_numpy(X).cuda(), torch.from_numpy(Y).cuda()
    assert fid(Xt, Yt) == pytest.approx(expected, rel=1e-9)
    stats = FeatureStatistics.from_features(Xt, batch_size=33)
    assert stats.cov.device.type == "cuda"
    assert fid(stats, Yt) == pytest.approx(expected, rel=1e-9)


def test_type_errors_and_small_statistics():
    with pytest.raises(TypeError, match="complex arrays are not supported"):
        fid(np.ones((4, 2), dtype=complex), np.ones((4, 2)))
    with pytest.raises(TypeError, match="features must be numeric"):
        fid(np.array([["a", "b"], ["c", "d"]]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="holds 1 samples; FID needs at least 2"):
        fid(FeatureStatistics().update(np.ones((1, 2))), np.ones((4, 2)))
    with pytest.raises(TypeError, match="other must be a FeatureStatistics"):
        FeatureStatistics().merge(np.ones((2, 2)))
