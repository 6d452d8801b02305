"""fastdensity's gaussian_kde against scipy.stats.gaussian_kde and NumPy oracles: densities, bandwidths, resampling, numerics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fastdensity.kde._gaussian_kde import gaussian_kde

from gaussian_kde_helpers import N, BW_METHODS, BW_IDS, _data, _points, _close, _oracle_logpdf, _check_attributes, _check_density


# ---------------------------------------------------------------------------- against scipy


@pytest.mark.parametrize("bw_method", BW_METHODS, ids=BW_IDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_matches_scipy(d, weighted, bw_method):
    x, w = _data(d, weighted)
    ours = gaussian_kde(x, bw_method=bw_method, weights=w)
    ref = stats.gaussian_kde(x, bw_method=bw_method, weights=w)
    _check_attributes(ours, ref)
    _check_density(ours, ref, _points(d), aliases=bw_method is None)

    mean, cov = np.linspace(-1, 1, d), np.eye(d) * 0.7 + 0.1
    _close(ours.integrate_gaussian(mean, cov), ref.integrate_gaussian(mean, cov))

    other_x, other_w = _data(d, not weighted, seed=5, n=30)
    ours_other = gaussian_kde(other_x, weights=other_w)
    ref_other = stats.gaussian_kde(other_x, weights=other_w)
    expected = ref.integrate_kde(ref_other)
    _close(ours.integrate_kde(ours_other), expected)
    _close(ours_other.integrate_kde(ours), expected)  # the other one iterated over
    _close(ours.integrate_kde(ref_other), expected)  # duck-typed: scipy's object works too

    low, high = np.full(d, -1.0), np.full(d, 2.0)
    if d == 1:
        _close(ours.integrate_box_1d(-1.0, 2.0), ref.integrate_box_1d(-1.0, 2.0))
    if d < 3 or bw_method is None:  # scipy's 3-D box integral (quasi-Monte Carlo) is slow
        _close(
            ours.integrate_box(low, high, rng=np.random.default_rng(3)),
            ref.integrate_box(low, high, rng=np.random.default_rng(3)),
        )

    np.testing.assert_array_equal(ours.resample(25, seed=7), ref.resample(25, seed=7))

    if d > 1:
        for dims in (0, [-1], [d - 1, 0]):
            m_ours, m_ref = ours.marginal(dims), ref.marginal(dims)
            assert isinstance(m_ours, gaussian_kde)
            _check_attributes(m_ours, m_ref)
        _check_density(m_ours, m_ref, _points(m_ref.d, m=10))


def test_subclass_covariance_factor_is_used():
    class Half(gaussian_kde):
        def covariance_factor(self):
            return 0.5 * self.scotts_factor()

    class RefHalf(stats.gaussian_kde):
        def covariance_factor(self):
            return 0.5 * self.scotts_factor()

    x, w = _data(2, True)
    ours, ref = Half(x, weights=w), RefHalf(x, weights=w)
    _check_attributes(ours, ref)
    _check_density(ours, ref, _points(2))


def test_set_bandwidth_sequence_matches_scipy():
    x, w = _data(2, True)
    ours, ref = gaussian_kde(x, weights=w), stats.gaussian_kde(x, weights=w)
    pts = _points(2)
    for bw in ["silverman", 0.2, lambda kde: kde.n ** -0.2, None, "scott", np.float32(0.8)]:
        ours.set_bandwidth(bw)
        ref.set_bandwidth(bw)
        _check_attributes(ours, ref)
        _check_density(ours, ref, pts)


def test_failed_set_bandwidth_changes_nothing():
    x, _ = _data(2, False)
    kde = gaussian_kde(x, bw_method="silverman")
    pts = _points(2)
    before = (kde.factor, kde.covariance.copy(), kde.logpdf(pts))
    with pytest.raises(ValueError, match="should be 'scott', 'silverman'"):
        kde.set_bandwidth("bogus")
    with pytest.raises(ValueError, match="positive finite number"):
        kde.set_bandwidth(lambda k: -1.0)
    with pytest.raises(ValueError, match="positive finite number"):
        kde.set_bandwidth(0.0)
    assert kde.factor == before[0]
    np.testing.assert_array_equal(kde.covariance, before[1])
    np.testing.assert_array_equal(kde.logpdf(pts), before[2])
    _close(kde.covariance_factor(), kde.silverman_factor())


@pytest.mark.parametrize("seed_kind", ["int", "randomstate", "generator", "global"])
def test_resample_same_numbers_as_scipy(seed_kind):
    x, w = _data(2, True)
    ours, ref = gaussian_kde(x, weights=w), stats.gaussian_kde(x, weights=w)
    if seed_kind == "global":
        state = np.random.get_state()
        try:
            np.random.seed(11)
            a = ours.resample(9)
            np.random.seed(11)
            b = ref.resample(9)
        finally:
            np.random.set_state(state)
    else:
        make = {
            "int": lambda: 11,
            "randomstate": lambda: np.random.RandomState(11),
            "generator": lambda: np.random.default_rng(11),
        }[seed_kind]
        a, b = ours.resample(9, seed=make()), ref.resample(9, seed=make())
    np.testing.assert_array_equal(a, b)
    # size=None draws int(neff) points
    assert ours.resample(seed=1).shape == (2, int(ours.neff))
    assert ours.resample(0, seed=1).shape == (2, 0)


def test_resample_moments():
    x, w = _data(2, True)
    kde = gaussian_kde(x, weights=w)
    draws = kde.resample(40_000, seed=np.random.default_rng(2))
    assert draws.shape == (2, 40_000)
    mean = np.average(x, axis=1, weights=w)
    # Mixture of Gaussians centred on the data: covariance = weighted (biased) data cov + kernel cov.
    centred = x - mean[:, None]
    data_cov = (centred * (w / w.sum())) @ centred.T
    expected_cov = data_cov + kde.covariance
    se = np.sqrt(np.diag(expected_cov) / draws.shape[1])
    assert np.all(np.abs(draws.mean(axis=1) - mean) < 5 * se)
    _close(np.cov(draws), expected_cov, rtol=0.05, atol=0.05 * np.max(np.abs(expected_cov)))
    # one-dimensional marginal law: the sample CDF matches the KDE's exact CDF
    k1 = kde.marginal(0)
    grid = np.quantile(draws[0], [0.1, 0.3, 0.5, 0.7, 0.9])
    exact = np.array([k1.integrate_box_1d(-np.inf, g) for g in grid])
    assert np.max(np.abs(exact - [0.1, 0.3, 0.5, 0.7, 0.9])) < 0.015


# ---------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("d", [1, 2])
def test_far_points_are_finite_and_correct(d, weighted):
    x, w = _data(d, weighted)
    ours = gaussian_kde(x, weights=w)
    ref = stats.gaussian_kde(x, weights=w)
    far = np.vstack([np.array([40.0, -300.0, 1e3, 1e5, 2.5e7]) * (k + 1) for k in range(d)])
    logp = ours.logpdf(far)
    assert np.all(np.isfinite(logp))
    oracle = _oracle_logpdf(x, ref.weights, ref.covariance, far)
    _close(logp, oracle)
    ref_logp = ref.logpdf(far)
    finite = np.isfinite(ref_logp)
    _close(logp[finite], ref_logp[finite])
    # the density itself underflows to 0 in float64, as scipy's does
    assert np.all(ours.evaluate(far) == 0.0)
    np.testing.assert_array_equal(ours.evaluate(far), ref.evaluate(far))


def test_logpdf_equals_oracle_near_data():
    x, w = _data(3, True)
    kde = gaussian_kde(x, weights=w, bw_method=0.2)
    pts = _points(3, m=30)
    _close(kde.logpdf(pts), _oracle_logpdf(x, kde.weights, kde.covariance, pts), atol=1e-12)


def test_data_far_from_origin_keep_their_digits():
    # Data at 1e6 with unit spread: scipy whitens raw coordinates (~1e7 after whitening) and
    # loses about 9 digits in the differences; we centre first and match the direct oracle.
    x, w = _data(2, True)
    x = x + 1e6
    pts = x[:, :20] + 0.3
    kde = gaussian_kde(x, weights=w)
    ref = stats.gaussian_kde(x, weights=w)
    oracle = _oracle_logpdf(x, ref.weights, ref.covariance, pts)
    _close(kde.logpdf(pts), oracle, atol=1e-12)
    _close(kde.logpdf(pts), ref.logpdf(pts), rtol=1e-6)  # scipy's own rounding


def test_density_integrates_to_one_and_properties():
    x, w = _data(1, True)
    kde = gaussian_kde(x, weights=w)
    _close(kde.integrate_box_1d(-np.inf, np.inf), 1.0)
    pts = _points(1)
    perm = np.random.default_rng(3).permutation(N)
    _close(gaussian_kde(x[:, perm], weights=w[perm]).logpdf(pts), kde.logpdf(pts), atol=1e-12)
    _close(gaussian_kde(x, weights=w * 1e6).logpdf(pts), kde.logpdf(pts), atol=1e-12)


def test_dtypes_follow_scipy():
    x, _ = _data(2, False)
    pts = _points(2)
    for data in (x.astype(np.float32), np.round(x * 10).astype(np.int64)):
        ours, ref = gaussian_kde(data), stats.gaussian_kde(data)
        assert ours.dataset.dtype == data.dtype
        _check_attributes(ours, ref)
        for p in (pts, pts.astype(np.float32)):
            out = ours.logpdf(p)
            assert out.dtype == np.float64
            _close(out, ref.logpdf(p), atol=1e-12)
            _close(ours(p), ref(p))
        np.testing.assert_array_equal(ours.resample(5, seed=1), ref.resample(5, seed=1))


def test_point_shapes_follow_scipy():
    x1, _ = _data(1, False)
    k1, r1 = gaussian_kde(x1[0]), stats.gaussian_kde(x1[0])
    for p in (0.5, [0.5], [0.1, 0.5, 2.0], np.array([[0.1, 0.5]]), np.zeros((1, 0))):
        assert k1(p).shape == r1(p).shape
        _close(k1(p), r1(p))
    x2, _ = _data(2, False)
    k2, r2 = gaussian_kde(x2), stats.gaussian_kde(x2)
    for p in ([0.3, -0.2], [[0.3, -0.2]], [[0.3], [-0.2]], _points(2, m=3)):
        assert k2.logpdf(p).shape == r2.logpdf(p).shape
        _close(k2(p), r2(p))
    with pytest.raises(ValueError, match="points have dimension 3, dataset has dimension 2"):
        k2(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="points have dimension 1, dataset has dimension 2"):
        k2.logpdf([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="points must be 1-D or 2-D"):
        k2(np.zeros((2, 2, 2)))


def test_train_cache_reused_and_invalidated():
    x, _ = _data(2, False)
    kde, ref = gaussian_kde(x), stats.gaussian_kde(x)
    pts = _points(2)
    kde.logpdf(pts)
    first = kde._cache[1][("cpu", None)]
    kde.logpdf(pts)
    assert kde._cache[1][("cpu", None)] is first
    kde.set_bandwidth(0.5)
    ref.set_bandwidth(0.5)
    _check_density(kde, ref, pts)
    assert kde._cache[1][("cpu", None)] is not first
    # reassigning the dataset is seen, as in scipy (which rereads it on every call)
    kde.dataset = kde.dataset + 1.0
    ref.dataset = ref.dataset + 1.0
    _check_density(kde, ref, pts)


def test_pickle_and_copy_keep_every_method():
    import copy
    import pickle

    x, w = _data(2, True)
    kde = gaussian_kde(x, weights=w)
    pts = _points(2)
    for other in (pickle.loads(pickle.dumps(kde)), copy.deepcopy(kde), copy.copy(kde)):
        _close(other.logpdf(pts), kde.logpdf(pts))
        _close(other.integrate_gaussian(np.zeros(2), np.eye(2)), kde.integrate_gaussian(np.zeros(2), np.eye(2)))
        _close(other.integrate_kde(kde), kde.integrate_kde(kde))


def test_torch_cpu_tensors():
    torch = pytest.importorskip("torch")
    x, w = _data(2, True)
    pts = _points(2)
    ours = gaussian_kde(torch.from_numpy(x), weights=torch.from_numpy(w))
    ref = stats.gaussian_kde(x, weights=w)
    _check_attributes(ours, ref)
    out = ours.logpdf(torch.from_numpy(pts))
    assert isinstance(out, np.ndarray)
    _close(out, ref.logpdf(pts), atol=1e-12)
    _close(ours.integrate_gaussian(torch.zeros(2), torch.eye(2)), ref.integrate_gaussian(np.zeros(2), np.eye(2)))
    _check_attributes(ours.marginal(torch.tensor([1])), ref.marginal([1]))
