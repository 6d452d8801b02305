"""fastdensity's gaussian_kde against scipy.stats.gaussian_kde and NumPy oracles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg, stats
from scipy.special import logsumexp

from fastdensity.kde._gaussian_kde import gaussian_kde

RTOL = 1e-12
N = 80
BW_METHODS = [None, "scott", "silverman", 0.3, lambda kde: 0.5 * kde.silverman_factor()]
BW_IDS = ["none", "scott", "silverman", "scalar", "callable"]


def _data(d, weighted, seed=0, n=N):
    rng = np.random.default_rng(seed + 10 * d)
    mix = rng.standard_normal((d, d)) + 2 * np.eye(d)  # correlated dimensions
    x = mix @ rng.standard_normal((d, n)) + np.arange(d)[:, None]
    x[:, : n // 4] += 3.0  # a second mode
    w = rng.uniform(0.1, 2.0, n) if weighted else None
    return x, w


def _points(d, m=40, seed=1, scale=3.0):
    return np.random.default_rng(seed).standard_normal((d, m)) * scale


def _close(a, b, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _oracle_logpdf(dataset, weights, covariance, points):
    """log Σ_j w_j N(p − x_j; 0, covariance) in log space with NumPy, no fastdensity code."""
    d = dataset.shape[0]
    chol = np.linalg.cholesky(covariance)
    diff = points[:, :, None] - dataset[:, None, :]  # (d, m, n)
    z = linalg.solve_triangular(chol, diff.reshape(d, -1), lower=True).reshape(diff.shape)
    log_k = -0.5 * np.sum(z * z, axis=0)
    log_norm = -0.5 * d * np.log(2 * np.pi) - np.sum(np.log(np.diag(chol)))
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    return logsumexp(log_k + log_w[None, :], axis=1) + log_norm


def _check_attributes(ours, ref):
    assert ours.d == ref.d and ours.n == ref.n
    _close(ours.neff, ref.neff)
    _close(ours.weights, ref.weights)
    _close(ours.factor, ref.factor)
    _close(ours.covariance, ref.covariance)
    _close(ours.inv_cov, ref.inv_cov)
    _close(ours.cho_cov, ref.cho_cov)
    _close(ours.log_det, ref.log_det)
    _close(ours.covariance_factor(), ref.covariance_factor())
    _close(ours.scotts_factor(), ref.scotts_factor())
    _close(ours.silverman_factor(), ref.silverman_factor())


def _check_density(ours, ref, points, aliases=False):
    expected = ref.evaluate(points)
    _close(ours.evaluate(points), expected)
    if aliases:
        _close(ours(points), expected)
        _close(ours.pdf(points), expected)
    # log densities near 0 make a relative comparison meaningless: add a tiny absolute slack.
    _close(ours.logpdf(points), ref.logpdf(points), atol=1e-12)


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
    first = kde._cache[2]
    kde.logpdf(pts)
    assert kde._cache[2] is first
    kde.set_bandwidth(0.5)
    ref.set_bandwidth(0.5)
    _check_density(kde, ref, pts)
    assert kde._cache[2] is not first
    # reassigning the dataset is seen, as in scipy (which rereads it on every call)
    kde.dataset = kde.dataset + 1.0
    ref.dataset = ref.dataset + 1.0
    _check_density(kde, ref, pts)


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


# ---------------------------------------------------------------------------- errors


def _collinear(seed):
    x = np.random.default_rng(seed).standard_normal(50)
    return np.vstack([x, 0.3 * x - 7.0])


def test_degenerate_data_error():
    # Collinear data: scipy's Cholesky fails or succeeds by rounding (scipy issue #10205);
    # both branches must give our error. Seeds 0 and 5 cover both here.
    for seed in range(8):
        with pytest.raises(np.linalg.LinAlgError, match="lower-dimensional subspace: dimension 1"):
            gaussian_kde(_collinear(seed))
    # ...and it is a ValueError that names the remedies
    with pytest.raises(ValueError, match="add a little jitter"):
        gaussian_kde(_collinear(0))
    with pytest.raises(np.linalg.LinAlgError, match="lower-dimensional subspace"):
        stats.gaussian_kde(_collinear(0))  # scipy fails on this one too
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2, 40))
    with pytest.raises(ValueError, match=r"dimension 2 .* linear function of dimensions \[0, 1\]"):
        gaussian_kde(np.vstack([a, b, a - 2 * b]))
    with pytest.raises(ValueError, match=r"dimension\(s\) \[1\] of `dataset` are constant"):
        gaussian_kde(np.vstack([a, np.full(40, 3.0)]))
    with pytest.raises(ValueError, match="greater than number of samples"):
        gaussian_kde(rng.standard_normal((3, 2)))
    with pytest.raises(ValueError, match="lower-dimensional subspace"):
        gaussian_kde(rng.standard_normal((3, 3)))  # n == d: the points span a plane
    # weighted: only the identical points carry weight
    data = np.vstack([a, b])
    data[:, :3] = 1.0
    with pytest.raises(ValueError, match="constant"):
        gaussian_kde(data, weights=np.r_[np.ones(3), np.zeros(37)])


def test_bad_dataset_errors():
    with pytest.raises(ValueError, match="`dataset` is empty"):
        gaussian_kde([])
    with pytest.raises(ValueError, match="`dataset` is empty"):
        gaussian_kde(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="should have multiple elements"):
        gaussian_kde([1.0])
    with pytest.raises(ValueError, match="must be 1-D"):
        gaussian_kde(np.zeros((2, 3, 4)))
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="`dataset` contains NaN or infinite"):
            gaussian_kde([0.0, 1.0, bad, 2.0])
    with pytest.raises(TypeError, match="`dataset` must contain real numbers"):
        gaussian_kde(np.array([1.0, 2.0, 3.0]) + 1j)
    with pytest.raises(TypeError, match="`dataset` must contain real numbers"):
        gaussian_kde(["a", "b", "c"])
    with pytest.raises(ValueError, match="overflowed"):
        gaussian_kde([1e300, -1e300, 3e300])


def test_bad_weights_errors():
    x = np.random.default_rng(0).standard_normal(10)
    cases = [
        (-np.ones(10), "must be non-negative"),
        (np.r_[np.ones(9), -1.0], "must be non-negative"),
        (np.ones(9), "should be of length n = 10"),
        (np.ones((2, 5)), "should be one-dimensional"),
        (np.zeros(10), "all zero"),
        (np.r_[1.0, np.zeros(9)], "only one positive entry"),
        (np.r_[np.nan, np.ones(9)], "`weights` contains NaN"),
        (np.r_[np.inf, np.ones(9)], "`weights` contains NaN"),
    ]
    for w, msg in cases:
        with pytest.raises(ValueError, match=msg):
            gaussian_kde(x, weights=w)
    # zero weights are fine as long as enough points remain
    w = np.r_[np.zeros(3), np.ones(7)]
    ours, ref = gaussian_kde(x, weights=w), stats.gaussian_kde(x, weights=w)
    _check_attributes(ours, ref)
    pts = _points(1)
    _close(ours(pts), ref(pts))
    # scipy's logpdf returns NaN when some weights are zero (log 0 inside its log-sum-exp); ours
    # is the log of its pdf.
    _close(ours.logpdf(pts), np.log(ref(pts)), atol=1e-12)
    _close(ours.logpdf(pts), _oracle_logpdf(x[None, :], ref.weights, ref.covariance, pts), atol=1e-12)


def test_bad_argument_errors():
    x, _ = _data(2, False)
    kde = gaussian_kde(x)
    with pytest.raises(ValueError, match="should be 'scott', 'silverman', a scalar or a callable"):
        gaussian_kde(x, bw_method=[0.1])
    for bad in (-0.5, np.nan, np.inf):
        with pytest.raises(ValueError, match="positive finite number"):
            gaussian_kde(x, bw_method=bad)
    with pytest.raises(ValueError, match="positive finite number"):
        gaussian_kde(x, bw_method=lambda k: np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="`points` contains NaN"):
        kde.logpdf([[0.0, np.nan], [1.0, 2.0]])
    with pytest.raises(ValueError, match="`points` contains NaN"):
        kde([np.inf, 0.0])
    with pytest.raises(ValueError, match="seed must be None, an int"):
        kde.resample(3, seed="abc")
    with pytest.raises(ValueError, match="`size` must be non-negative"):
        kde.resample(-1)
    with pytest.raises(TypeError, match="`size` must be an integer"):
        kde.resample(2.5)
    with pytest.raises(ValueError, match="mean does not have dimension 2"):
        kde.integrate_gaussian([0.0, 0.0, 0.0], np.eye(2))
    with pytest.raises(ValueError, match="covariance does not have dimension 2"):
        kde.integrate_gaussian([0.0, 0.0], np.eye(3))
    with pytest.raises(ValueError, match="`cov` contains NaN"):
        kde.integrate_gaussian([0.0, 0.0], np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="not positive definite"):
        kde.integrate_gaussian([0.0, 0.0], -100 * np.eye(2))
    with pytest.raises(ValueError, match="only handles 1D pdfs"):
        kde.integrate_box_1d(0.0, 1.0)
    with pytest.raises(ValueError, match="KDEs are not the same dimensionality"):
        kde.integrate_kde(gaussian_kde(x[0]))
    with pytest.raises(TypeError, match="`other` must be a gaussian_kde"):
        kde.integrate_kde(np.zeros(3))
    with pytest.raises(ValueError, match="must be integers"):
        kde.marginal(0.5)
    with pytest.raises(ValueError, match="must be unique"):
        kde.marginal([0, -2])
    with pytest.raises(ValueError, match=r"Dimensions \[5\] are invalid"):
        kde.marginal([5])
