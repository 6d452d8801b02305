"""fastdensity's gaussian_kde against scipy.stats.gaussian_kde and NumPy oracles."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import linalg, stats
from scipy.special import logsumexp

from fastdensity.kde._gaussian_kde import gaussian_kde

RTOL = 1e-12
# scipy's message for singular data (ours begins with it), as a regular expression
SCIPY_SINGULAR = re.escape(
    "The data appears to lie in a lower-dimensional subspace of the space in which it is "
    "expressed. This has resulted in a singular data covariance matrix, which cannot be treated "
    "using the algorithms implemented in `gaussian_kde`. Consider performing principal component "
    "analysis / dimensionality reduction and using `gaussian_kde` with the transformed data."
)
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


# ---------------------------------------------------------------------------- errors


def _collinear(seed):
    x = np.random.default_rng(seed).standard_normal(50)
    return np.vstack([x, 0.3 * x - 7.0])


def test_degenerate_data_error():
    # Collinear data: scipy's Cholesky fails or succeeds by rounding (scipy issue #10205);
    # both branches must give our error. Seeds 0 and 5 cover both here.
    for seed in range(8):
        with pytest.raises(np.linalg.LinAlgError, match=SCIPY_SINGULAR + " Here dimension 1 of"):
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
    with pytest.raises(ValueError, match=SCIPY_SINGULAR + r" Here dimension\(s\) \[1\] of `dataset` are constant"):
        gaussian_kde(np.vstack([a, np.full(40, 3.0)]))
    with pytest.raises(ValueError, match=re.escape("Number of dimensions is greater than number of samples.")):
        gaussian_kde(rng.standard_normal((3, 2)))
    with pytest.raises(ValueError, match=SCIPY_SINGULAR + " Here dimension 2 of"):
        gaussian_kde(rng.standard_normal((3, 3)))  # n == d: the points span a plane
    # weighted: only the identical points carry weight
    data = np.vstack([a, b])
    data[:, :3] = 1.0
    with pytest.raises(ValueError, match=SCIPY_SINGULAR + r" Here dimension\(s\) \[0, 1\] of `dataset` are constant"):
        gaussian_kde(data, weights=np.r_[np.ones(3), np.zeros(37)])


def test_bad_dataset_errors():
    with pytest.raises(ValueError, match="`dataset` input should have multiple elements. Got 0"):
        gaussian_kde([])
    with pytest.raises(ValueError, match=re.escape("multiple elements. Got 0 value(s) (shape (2, 0))")):
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
        (np.ones(9), "should be of length n. Got length 9 for n = 10"),
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
    with pytest.raises(ValueError, match="cannot be used to seed a numpy.random.RandomState instance; pass None"):
        kde.resample(3, seed="abc")
    with pytest.raises(ValueError, match="negative dimensions are not allowed: `size` must be non-negative"):
        kde.resample(-1)
    with pytest.raises(TypeError, match="`size` must be an integer"):
        kde.resample(2.5)
    with pytest.raises(ValueError, match="mean does not have dimension 2"):
        kde.integrate_gaussian([0.0, 0.0, 0.0], np.eye(2))
    with pytest.raises(ValueError, match="covariance does not have dimension 2"):
        kde.integrate_gaussian([0.0, 0.0], np.eye(3))
    with pytest.raises(ValueError, match="`cov` contains NaN"):
        kde.integrate_gaussian([0.0, 0.0], np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="1-th leading minor of the array is not positive definite: the sum"):
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


# ---------------------------------------------------------------------------- scipy's error messages


def _error_cases():
    rng = np.random.default_rng(20)
    x2 = rng.standard_normal((2, 40))
    x1 = rng.standard_normal(10)
    a = rng.standard_normal(40)
    return {
        "empty": lambda K: K([]),
        "one element": lambda K: K([1.0]),
        "nan in dataset": lambda K: K([0.0, 1.0, np.nan, 2.0]),
        "inf in dataset": lambda K: K([0.0, 1.0, np.inf, 2.0]),
        "covariance overflows": lambda K: K([1e300, -1e300, 3e300]),
        "d > n": lambda K: K(rng.standard_normal((3, 2))),
        "collinear": lambda K: K(_collinear(0)),  # scipy happens to fail on this one
        "weights 2-D": lambda K: K(x1, weights=np.ones((2, 5))),
        "weights length": lambda K: K(x1, weights=np.ones(9)),
        "bw_method string": lambda K: K(x2, bw_method="bogus"),
        "bw_method list": lambda K: K(x2, bw_method=[0.1]),
        "set_bandwidth": lambda K: K(x2).set_bandwidth("bogus"),
        "points dimension": lambda K: K(x2)(np.zeros((3, 4))),
        "logpdf dimension": lambda K: K(x2).logpdf(np.zeros((3, 4))),
        "row vector": lambda K: K(x2).logpdf([1.0, 2.0, 3.0]),
        "boolean points": lambda K: K(x2)(np.ones((2, 3), dtype=bool)),
        "mean dimension": lambda K: K(x2).integrate_gaussian([0.0, 0.0, 0.0], np.eye(2)),
        "cov dimension": lambda K: K(x2).integrate_gaussian([0.0, 0.0], np.eye(3)),
        "cov not positive definite": lambda K: K(x2).integrate_gaussian([0.0, 0.0], -100 * np.eye(2)),
        "cov not finite": lambda K: K(x2).integrate_gaussian([0.0, 0.0], np.full((2, 2), np.nan)),
        "box_1d in 2-D": lambda K: K(x2).integrate_box_1d(0.0, 1.0),
        "kde dimensions": lambda K: K(x2).integrate_kde(K(x1)),
        "seed string": lambda K: K(x2).resample(3, seed="abc"),
        "seed float": lambda K: K(x2).resample(3, seed=1.5),
        "negative size": lambda K: K(x2).resample(-1, seed=0),
        "marginal float": lambda K: K(x2).marginal(0.5),
        "marginal repeated": lambda K: K(x2).marginal([0, -2]),
        "marginal invalid": lambda K: K(x2).marginal([5]),
        "box dimension": lambda K: K(x2).integrate_box([0, 0, 0], [1, 1, 1], rng=np.random.default_rng(0)),
    }


@pytest.mark.parametrize("case", list(_error_cases()))
def test_errors_begin_with_scipys_message(case):
    """Where scipy raises, we raise the same exception type (or a subclass) with a message that
    begins with scipy's (users match on it); ours goes on to say what to change."""
    make = _error_cases()[case]
    with pytest.raises(Exception) as ref:  # noqa: PT011 - whatever scipy raises is the reference
        with np.errstate(all="ignore"):
            make(stats.gaussian_kde)
    with pytest.raises(type(ref.value), match="^" + re.escape(str(ref.value))):
        make(gaussian_kde)


def test_errors_where_scipy_has_no_message_of_its_own():
    # scipy's errors here are accidents of its implementation ("too many values to unpack",
    # "'float' object is unsliceable", AttributeError: no attribute 'd'); ours say what is wrong.
    x2 = np.random.default_rng(21).standard_normal((2, 40))
    kde = gaussian_kde(x2)
    with pytest.raises(ValueError, match=r"`dataset` must be 1-D \(n,\) or 2-D \(d, n\)"):
        gaussian_kde(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"points must be 1-D or 2-D"):
        kde(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="`size` must be an integer or None; got 2.5"):
        kde.resample(2.5)
    with pytest.raises(TypeError, match="'numpy.ndarray' object has no attribute 'd': `other` must be a gaussian_kde"):
        kde.integrate_kde(np.zeros(3))
    with pytest.raises(ValueError, match=r"`dimensions` must be an int or a 1-D array"):
        kde.marginal([[0]])
    # singular data that scipy accepts by rounding: our error carries scipy's singular-data message
    a, b = np.random.default_rng(4).standard_normal((2, 40))
    with pytest.raises(np.linalg.LinAlgError, match="^" + SCIPY_SINGULAR):
        gaussian_kde(np.vstack([a, b, a - 2 * b]))


# ---------------------------------------------------------------------------- output dtypes

LONG_DOUBLE_IS_WIDER = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps


@pytest.mark.parametrize("data_dtype", [np.float16, np.float32, np.float64, np.longdouble, np.int64, np.uint8])
def test_output_dtypes_follow_scipy(data_dtype):
    """evaluate/logpdf/resample/integrals return scipy's dtype for every data and point dtype
    (np.common_type(covariance, points): float64, or long double), with scipy's values."""
    rng = np.random.default_rng(22)
    x = rng.standard_normal((2, 60)) * 10
    data = np.abs(x).astype(data_dtype) if data_dtype == np.uint8 else x.astype(data_dtype)
    ours, ref = gaussian_kde(data), stats.gaussian_kde(data)
    assert ours.dataset.dtype == data.dtype
    assert ours.covariance.dtype == ref.covariance.dtype and ours.cho_cov.dtype == ref.cho_cov.dtype
    pts = rng.standard_normal((2, 7)) * 10
    for p_dtype in (np.float16, np.float32, np.float64, np.longdouble, np.int64):
        p = pts.astype(p_dtype)
        for method in ("evaluate", "logpdf", "pdf", "__call__"):
            got, want = getattr(ours, method)(p), getattr(ref, method)(p)
            assert got.dtype == want.dtype, (method, data_dtype, p_dtype)
            # long double results carry float64 precision (scipy, too, whitens in float64)
            _close(got.astype(np.float64), want.astype(np.float64), rtol=1e-13, atol=1e-300)
    draws, ref_draws = ours.resample(4, seed=3), ref.resample(4, seed=3)
    assert draws.dtype == ref_draws.dtype
    np.testing.assert_array_equal(draws, ref_draws)
    # scipy's integrate_kde differences the points in the data's dtype (float16 rounding, uint8
    # wrap-around): its values are compared on the same numbers in float64
    ref64 = ref if data_dtype == np.longdouble else stats.gaussian_kde(data.astype(np.float64))
    assert np.asarray(ours.integrate_kde(ours)).dtype == np.asarray(ref.integrate_kde(ref)).dtype
    for got, want in [
        (ours.integrate_gaussian(np.zeros(2), np.eye(2)), ref.integrate_gaussian(np.zeros(2), np.eye(2))),
        (ours.integrate_kde(ours), ref64.integrate_kde(ref64)),
        (ours.marginal(1).covariance, ref.marginal(1).covariance),
    ]:
        assert np.asarray(got).dtype == np.asarray(want).dtype
        _close(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64))
    assert np.asarray(ours.integrate_box([0, 0], [1, 1], rng=np.random.default_rng(0))).dtype == np.float64


@pytest.mark.parametrize("factor", [np.float16(0.4), np.float32(0.4), 0.4, np.longdouble(0.4), 1])
def test_output_dtype_follows_the_bandwidth_factor(factor):
    x = np.random.default_rng(23).standard_normal((2, 50))
    pts = np.random.default_rng(24).standard_normal((2, 5))
    for bw in (factor, lambda kde: factor):
        ours, ref = gaussian_kde(x, bw_method=bw), stats.gaussian_kde(x, bw_method=bw)
        assert ours.covariance.dtype == ref.covariance.dtype
        for method in ("evaluate", "logpdf"):
            got, want = getattr(ours, method)(pts), getattr(ref, method)(pts)
            assert got.dtype == want.dtype, (method, type(factor))
            _close(got.astype(np.float64), want.astype(np.float64), rtol=1e-13)
        assert ours.resample(3, seed=1).dtype == ref.resample(3, seed=1).dtype


def test_long_double_data_also_integrates():
    # scipy raises TypeError in integrate_box_1d / integrate_box for long double data; we compute
    # in float64.
    x = np.random.default_rng(25).standard_normal(40)
    ours, ref = gaussian_kde(x.astype(np.longdouble)), stats.gaussian_kde(x)
    _close(ours.integrate_box_1d(-0.5, 1.0), ref.integrate_box_1d(-0.5, 1.0))
    _close(ours.integrate_box(-0.5, 1.0), ref.integrate_box(-0.5, 1.0))
    x2 = np.random.default_rng(26).standard_normal((2, 40))
    ours2, ref2 = gaussian_kde(x2.astype(np.longdouble)), stats.gaussian_kde(x2)
    box = ([-0.5, -1.0], [1.0, 0.5])
    _close(ours2.integrate_box(*box, rng=np.random.default_rng(1)), ref2.integrate_box(*box, rng=np.random.default_rng(1)))


# ---------------------------------------------------------------------------- agreement and accuracy

EPS = np.finfo(np.float64).eps


def _long_double_density(kde, points):
    """The exact (to long double rounding) density of the kde defined by scipy's cho_cov and
    weights at ``points``: the whitening, the distances and the sums in long double, after
    subtracting the first data point from everything (exact for data and points within a factor
    2 of it, so that the oracle keeps its digits far from the origin too)."""
    ld = np.longdouble
    L = np.asarray(kde.cho_cov, dtype=ld)
    d = L.shape[0]
    origin = np.asarray(kde.dataset, dtype=ld)[:, :1]

    def whiten(v):
        z = np.empty_like(v)
        for i in range(d):
            acc = v[i].copy()
            for k in range(i):
                acc -= L[i, k] * z[k]
            z[i] = acc / L[i, i]
        return z

    zx = whiten(np.asarray(kde.dataset, dtype=ld) - origin)
    zq = whiten(np.asarray(points, dtype=ld) - origin)
    w = np.asarray(kde.weights, dtype=ld)
    norm = np.prod(np.diag(L)) * (2 * ld(np.pi)) ** (ld(d) / 2)
    return np.array([np.sum(w * np.exp(-np.sum((zx - zq[:, j:j + 1]) ** 2, axis=0) / 2)) for j in
                     range(zq.shape[1])]) / norm


def _correlated_sample(rng, d, n, offset=0.0):
    mix = np.eye(d) + 0.8 * np.tri(d, k=-1)  # correlated dimensions
    return mix @ rng.standard_normal((d, n)) + offset


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_agrees_with_scipy_to_5e_14(d, weighted):
    """The issue's bound: on data within a few standard deviations of the origin our whitened
    coordinates are scipy's own, so densities agree to the engines' rounding, at points from the
    data's bulk to its tails (density down to ~1e-12 of its peak; where log p is large the
    roundings of log p are of size 1e-16·|log p|, in scipy's sums as in ours)."""
    rng = np.random.default_rng(27 + d)
    n = 3000
    x = _correlated_sample(rng, d, n, offset=np.linspace(-2.0, 3.0, d)[:, None])
    w = rng.uniform(0.1, 2.0, n) if weighted else None
    pts = _correlated_sample(rng, d, 400, offset=np.linspace(-2.0, 3.0, d)[:, None] * 1.2) * 1.5
    ours, ref = gaussian_kde(x, weights=w), stats.gaussian_kde(x, weights=w)
    got, want = ours(pts), ref(pts)
    assert want.min() < 1e-8 * want.max()  # the points reach into the tails
    _close(got, want, rtol=5e-14)
    # scipy's logpdf (its own log-sum-exp) is off by ~6e-14 even in the bulk (measured against a
    # long-double oracle) where its evaluate is not: compare with the log of its evaluate, to 5e-14
    # plus a few ulps of log p itself
    _close(ours.logpdf(pts), np.log(want), rtol=4 * EPS, atol=5e-14)


@pytest.mark.skipif(not LONG_DOUBLE_IS_WIDER, reason="long double is float64 on this platform")
@pytest.mark.parametrize("offset", [0.0, 30.0, 300.0, 1e6])
def test_accurate_far_from_the_origin(offset):
    """Against a long-double oracle: ours is accurate at any offset (a dimension far from the
    origin is centred exactly before whitening); scipy's whitening of the raw coordinates loses
    digits as the offset grows, so there the two differ by scipy's error."""
    rng = np.random.default_rng(31)
    x = _correlated_sample(rng, 2, 800, offset=offset)
    w = rng.uniform(0.1, 2.0, 800)
    pts = _correlated_sample(rng, 2, 200, offset=offset) * 1.0
    pts = offset + (pts - offset) * 1.5
    ours, ref = gaussian_kde(x, weights=w), stats.gaussian_kde(x, weights=w)
    exact = _long_double_density(ref, pts).astype(np.float64)
    got, want = ours(pts), ref(pts)
    _close(got, exact, rtol=5e-14)
    scipy_error = np.max(np.abs(want - exact) / exact)
    if offset <= 30.0:
        _close(got, want, rtol=5e-14)
    else:  # scipy's own error: 1e-13 at 300σ, 1e-9 at 1e6σ
        assert scipy_error > 5e-14


def test_blas_threads_are_restored():
    """The one-BLAS-thread limit around our solves is lifted afterwards, also while other Python
    threads use gaussian_kde and BLAS at the same time (they run unlimited)."""
    import threading

    from threadpoolctl import threadpool_info

    def counts():
        return [(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]

    before = counts()
    x = np.random.default_rng(32).standard_normal((3, 300))
    stop = threading.Event()

    def work():
        while not stop.is_set():
            gaussian_kde(x).logpdf(x[:, :40])
            np.linalg.solve(np.eye(200) + np.outer(x[0, :200], x[1, :200]), np.ones((200, 20)))

    workers = [threading.Thread(target=work) for _ in range(2)]
    for t in workers:
        t.start()
    try:
        for _ in range(15):
            gaussian_kde(x).logpdf(x)
    finally:
        stop.set()
        for t in workers:
            t.join()
    assert counts() == before
