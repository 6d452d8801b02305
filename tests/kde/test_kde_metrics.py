"""KernelDensity under scikit-learn's non-euclidean metrics.

References: scikit-learn's ``KernelDensity(metric=..., rtol=0, atol=0)`` (its tree answer, exact
up to the rounding of its bound bookkeeping), and a brute-force NumPy oracle on scikit-learn's
``DistanceMetric.pairwise`` distances with the same (euclidean) normalisation convention.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.metrics import DistanceMetric
from sklearn.neighbors import KernelDensity as SKKernelDensity

from fastdensity import KernelDensity
from fastdensity.kde._kde import VALID_METRICS
from fastdensity.kde._kernels import COMPACT_KERNELS, KERNELS, kernel_profile_log, log_kernel_norm

EPS = np.finfo(np.float64).eps
SK_KERNELS = ("gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine")
N, M, D = 150, 40, 3
H = 0.9


def _data(metric, seed=0):
    """Training data, queries and weights suited to ``metric`` (binary for the boolean ones,
    (latitude, longitude) in radians for haversine)."""
    rng = np.random.default_rng(seed)
    if metric == "haversine":
        def draw(k):
            return np.c_[rng.uniform(-1.4, 1.4, k), rng.uniform(-3.0, 3.0, k)]
        X, Q = draw(N), draw(M)
    elif metric in ("hamming", "jaccard", "dice", "rogerstanimoto", "russellrao", "sokalmichener",
                    "sokalsneath"):
        X = (rng.random((N, 6)) < 0.4).astype(np.float64)
        Q = (rng.random((M, 6)) < 0.4).astype(np.float64)
    else:
        X, Q = rng.normal(size=(N, D)), rng.normal(size=(M, D))
    return X, Q, rng.uniform(0.1, 2.0, N)


_VI = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
METRIC_CASES = [
    ("manhattan", None), ("cityblock", None), ("l1", None), ("chebyshev", None), ("infinity", None),
    ("minkowski", {"p": 3}), ("p", {"p": 1.5}), ("minkowski", {"p": 4, "w": np.array([1.0, 0.5, 2.0])}),
    ("seuclidean", {"V": np.array([1.0, 2.0, 0.5])}), ("mahalanobis", {"VI": _VI}),
    ("mahalanobis", {"V": np.linalg.inv(_VI)}), ("haversine", None), ("hamming", None),
    ("canberra", None), ("braycurtis", None), ("jaccard", None), ("dice", None),
    ("rogerstanimoto", None), ("russellrao", None), ("sokalmichener", None), ("sokalsneath", None),
]
_IDS = [f"{m}-{sorted(p) if p else ''}" for m, p in METRIC_CASES]


def _oracle(X, Q, metric, params, kernel, h, weights=None, lam=None):
    """Brute force: log Σ_j ŵ_j c_d (λ_j h)^-d k(D(q, x_j) / (λ_j h)), D from scikit-learn."""
    n, d = X.shape
    dist = DistanceMetric.get_metric(metric, **(params or {})).pairwise(Q, X)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    lam = np.ones(n) if lam is None else lam
    terms = (kernel_profile_log(kernel, dist / (lam * h)) + np.log(w / w.sum()) - d * np.log(lam))
    return logsumexp(terms, axis=1) + log_kernel_norm(kernel, d) - d * math.log(h)


def _assert_densities_close(ours, ref, kernel, d, h):
    """Compare in density space: relative 1e3·eps, plus an absolute 1e3·eps of the kernel's peak
    c_d h^-d. The absolute part covers scikit-learn's tree, which subtracts node bounds in log
    space (logsubexp) and so leaves residues of order eps·peak (it returns e.g. −36.6 where
    every training point lies outside a compact kernel's support)."""
    peak = math.exp(log_kernel_norm(kernel, d) - d * math.log(h))
    np.testing.assert_allclose(np.exp(ours), np.exp(ref), rtol=1e3 * EPS, atol=1e3 * EPS * peak)


@pytest.mark.parametrize(("metric", "params"), METRIC_CASES, ids=_IDS)
@pytest.mark.parametrize("kernel", SK_KERNELS)
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_scikit_learn(metric, params, kernel, weighted):
    X, Q, w = _data(metric)
    w = w if weighted else None
    d = X.shape[1]
    ref = SKKernelDensity(kernel=kernel, bandwidth=H, metric=metric, metric_params=params,
                          rtol=0, atol=0).fit(X, sample_weight=w).score_samples(Q)
    ref = ref + _normaliser_difference(kernel, d, H)
    kde = KernelDensity(kernel=kernel, bandwidth=H, metric=metric, metric_params=params).fit(X, sample_weight=w)
    ours = kde.score_samples(Q)
    _assert_densities_close(ours, ref, kernel, d, H)
    oracle = _oracle(X, Q, metric, params, kernel, H, w)
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(oracle))
    finite = np.isfinite(oracle)
    np.testing.assert_allclose(ours[finite], oracle[finite], rtol=100 * EPS, atol=100 * EPS)


def _normaliser_difference(kernel, d, h):
    """log c_d (fastdensity) − log c_d (scikit-learn): 0 but for the cosine kernel in even d,
    where scikit-learn's normaliser is wrong (see KernelDensity's ``kernel``)."""
    from sklearn.neighbors._kd_tree import kernel_norm

    return log_kernel_norm(kernel, d) - d * math.log(h) - kernel_norm(h, d, kernel, return_log=True)


@pytest.mark.parametrize("kernel", SK_KERNELS)
@pytest.mark.parametrize("d", [1, 2, 3, 4, 6])
def test_normalisation_is_scikit_learns_but_for_the_even_dimensional_cosine(kernel, d):
    diff = _normaliser_difference(kernel, d, 0.7)
    if kernel == "cosine" and d % 2 == 0:
        assert not abs(diff) <= 1e-3  # wrong, or NaN (scikit-learn's log of a negative sum, d = 4)
    else:
        assert diff == pytest.approx(0.0, abs=100 * EPS)


def test_weighted_minkowski_samples_keep_the_metric_exponent():
    """Weighted draws under minkowski p = 3 (the weights once overwrote the exponent p, and
    sampling raised TypeError): they stay in the p = 3 unit ball of their centre, in proportion
    to the weights."""
    X = np.array([[0.0, 0.0], [50.0, 0.0]])
    kde = KernelDensity(kernel="tophat", bandwidth=1.0, metric="minkowski",
                        metric_params={"p": 3.0}).fit(X, sample_weight=[1.0, 3.0])
    s = kde.sample(4000, random_state=17)
    near_second = (np.abs(s - X[1]) ** 3).sum(axis=1) <= 1.0 + 1e-12
    assert np.all(near_second | ((np.abs(s) ** 3).sum(axis=1) <= 1.0 + 1e-12))
    assert near_second.mean() == pytest.approx(0.75, abs=0.03)
    # Beyond the euclidean ball: the p = 3 ball reaches corners the p = 2 ball does not.
    assert np.any((np.abs(s - X[near_second.astype(int)]) ** 2).sum(axis=1) > 1.0)


@pytest.mark.parametrize(("metric", "params"), [
    ("manhattan", None), ("chebyshev", None), ("minkowski", {"p": 0.5}), ("minkowski", {"p": 3}),
    ("mahalanobis", {"VI": _VI}), ("haversine", None), ("canberra", None),
])
@pytest.mark.parametrize("kernel", KERNELS)
def test_every_kernel_matches_the_brute_force_oracle(metric, params, kernel):
    """All eight kernels (biweight and triweight are not in scikit-learn), weighted, and
    Minkowski with p < 1, where scikit-learn's tree (which prunes by the triangle inequality,
    false for p < 1) is off by up to 1e-11 and misses part of compact supports."""
    X, Q, w = _data(metric, seed=1)
    ours = KernelDensity(kernel=kernel, bandwidth=H, metric=metric, metric_params=params).fit(
        X, sample_weight=w).score_samples(Q)
    oracle = _oracle(X, Q, metric, params, kernel, H, w)
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(oracle))
    finite = np.isfinite(oracle)
    np.testing.assert_allclose(ours[finite], oracle[finite], rtol=100 * EPS, atol=100 * EPS)


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "exponential"])
@pytest.mark.parametrize(("metric", "params"), [("manhattan", None), ("minkowski", {"p": 3})])
def test_adaptive_matches_the_oracle(kernel, metric, params):
    """Abramson's λ_j under a metric: pilot with the global h, kernels c_d (λ_j h)^-d k(D/(λ_j h))."""
    X, Q, w = _data(metric, seed=2)
    kde = KernelDensity(kernel=kernel, bandwidth=1.2, metric=metric, metric_params=params,
                        adaptive=True).fit(X, sample_weight=w)
    pilot = _oracle(X, X, metric, params, kernel, 1.2, w)
    wn = w / w.sum()
    lam = np.exp(-0.5 * (pilot - wn @ pilot))
    np.testing.assert_allclose(kde.adaptive_factors_, lam, rtol=1e3 * EPS)
    oracle = _oracle(X, Q, metric, params, kernel, 1.2, w, lam)
    ours = kde.score_samples(Q)
    finite = np.isfinite(oracle)
    np.testing.assert_array_equal(np.isfinite(ours), finite)
    np.testing.assert_allclose(ours[finite], oracle[finite], rtol=1e3 * EPS, atol=1e3 * EPS)


def test_aliases_and_special_minkowski_orders_are_the_same_metric():
    X, Q, _ = _data("manhattan", seed=3)

    def score(metric, params=None):
        return KernelDensity(metric=metric, metric_params=params, bandwidth=0.5).fit(X).score_samples(Q)

    np.testing.assert_array_equal(score("l1"), score("manhattan"))
    np.testing.assert_array_equal(score("cityblock"), score("manhattan"))
    np.testing.assert_array_equal(score("minkowski", {"p": 1}), score("manhattan"))
    np.testing.assert_array_equal(score("p", {"p": 1}), score("manhattan"))
    np.testing.assert_array_equal(score("infinity"), score("chebyshev"))
    np.testing.assert_array_equal(score("minkowski", {"p": np.inf}), score("chebyshev"))
    np.testing.assert_array_equal(score("minkowski", {"p": 2}), score("euclidean"))
    np.testing.assert_array_equal(score("p"), score("euclidean"))


def test_far_queries_are_finite_for_unbounded_kernels_and_minus_inf_for_compact_ones():
    X, _, _ = _data("manhattan", seed=4)
    far = np.full((2, D), 1e4)
    for kernel in KERNELS:
        out = KernelDensity(kernel=kernel, bandwidth=0.5, metric="manhattan").fit(X).score_samples(far)
        if kernel in COMPACT_KERNELS:
            assert np.all(out == -np.inf)
        else:
            assert np.all(np.isfinite(out))
            oracle = _oracle(X, far, "manhattan", None, kernel, 0.5)
            np.testing.assert_allclose(out, oracle, rtol=100 * EPS)


def test_float32_in_float32_out_and_thread_count_changes_nothing():
    X, Q, w = _data("chebyshev", seed=5)
    X = np.tile(X, (60, 1))  # 9000 × 1200 pairs > the serial threshold: the parallel driver runs
    kde = KernelDensity(metric="chebyshev", bandwidth=0.4).fit(X)
    a = kde.score_samples(np.tile(Q, (30, 1)))
    b = KernelDensity(metric="chebyshev", bandwidth=0.4, n_jobs=1).fit(X).score_samples(np.tile(Q, (30, 1)))
    np.testing.assert_array_equal(a, b)
    kde32 = KernelDensity(metric="chebyshev", bandwidth=0.4).fit(X.astype(np.float32))
    out32 = kde32.score_samples(Q.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, a[: len(Q)], rtol=10 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("rule", ["scott", "silverman"])
def test_rules_give_a_scalar_bandwidth(rule):
    """Under a metric a rule gives h = factor · sqrt(mean per-feature variance) / sqrt(v_kernel),
    the isotropic case of the euclidean rule's matrix."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 2)) * 3.0
    kde = KernelDensity(metric="manhattan", bandwidth=rule, kernel="epanechnikov").fit(X)
    euclid = KernelDensity(bandwidth=rule, kernel="epanechnikov").fit(X)
    assert isinstance(kde.bandwidth_, float)
    h2 = np.mean(np.diag(euclid.bandwidth_matrix_))
    assert kde.bandwidth_ == pytest.approx(math.sqrt(h2), rel=1e-12)
    np.testing.assert_array_equal(kde.bandwidth_matrix_, np.eye(2) * kde.bandwidth_**2)


# ------------------------------------------------------------------------------------ errors
def test_valid_metrics_are_scikit_learns_but_pyfunc():
    from sklearn.neighbors import VALID_METRICS as SK_VALID

    assert set(VALID_METRICS) == (set(SK_VALID["ball_tree"]) | set(SK_VALID["kd_tree"])) - {"pyfunc"}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"metric": "manhattan", "bandwidth": "cv"}, "takes a scalar bandwidth.*got 'cv'"),
    ({"metric": "manhattan", "bandwidth": "isj"}, "takes a scalar bandwidth.*got 'isj'"),
    ({"metric": "chebyshev", "bandwidth": np.array([0.5, 1.0, 1.0])}, "takes a scalar bandwidth"),
    ({"metric": "chebyshev", "bandwidth": np.eye(3)}, "takes a scalar bandwidth"),
    ({"metric": "manhattan", "bandwidth": -1.0}, "bandwidth must be positive and finite"),
    ({"metric": "manhattan", "metric_params": {"p": 1}}, r"\['p'\] are not parameters of metric='manhattan'"),
    ({"metric": "minkowski", "metric_params": {"p": 0}}, r"metric_params\['p'\] .* must be a number > 0"),
    ({"metric": "minkowski", "metric_params": {"p": 3, "w": [1.0, -1.0, 1.0]}}, "must be non-negative"),
    ({"metric": "minkowski", "metric_params": {"p": 3, "w": [1.0, 1.0]}}, r"must have shape \(3,\)"),
    ({"metric": "minkowski", "metric_params": {"p": np.inf, "w": [1.0, 1.0, 1.0]}}, "needs a finite p"),
    ({"metric": "minkowski", "metric_params": {"q": 3}}, r"\['q'\] are not parameters"),
    ({"metric": "seuclidean"}, "needs metric_params=\\{'V': V\\}"),
    ({"metric": "seuclidean", "metric_params": {"V": [1.0, 0.0, 1.0]}}, "must be positive"),
    ({"metric": "mahalanobis"}, "needs metric_params \\{'VI': VI\\} or \\{'V': V\\}"),
    ({"metric": "mahalanobis", "metric_params": {"VI": -np.eye(3)}}, "symmetric positive semi-definite"),
    ({"metric": "mahalanobis", "metric_params": {"V": np.zeros((3, 3))}}, "'V'\\] is singular"),
    ({"metric": "haversine"}, "needs 2-D data \\(latitude, longitude\\) in radians; got 3 features"),
])
def test_bad_metric_configurations(kwargs, match):
    X = np.random.default_rng(7).normal(size=(20, 3))
    with pytest.raises(ValueError, match=match):
        KernelDensity(**kwargs).fit(X)


@pytest.mark.parametrize("metric", ["haversine", "hamming", "canberra", "braycurtis", "jaccard"])
def test_sampling_without_a_norm_raises(metric):
    X, _, _ = _data(metric)
    kde = KernelDensity(metric=metric).fit(X)
    with pytest.raises(NotImplementedError, match=f"sampling with metric='{metric}' is not implemented"):
        kde.sample(3, random_state=0)


@pytest.mark.gpu
def test_gpu_data_with_a_metric_raises():
    cp = pytest.importorskip("cupy")
    X = cp.asarray(np.random.default_rng(8).normal(size=(20, 2)))
    with pytest.raises(ValueError, match="metric='manhattan' runs on the CPU engine only"):
        KernelDensity(metric="manhattan").fit(X)
    kde = KernelDensity(metric="manhattan").fit(cp.asnumpy(X))
    with pytest.raises(ValueError, match="metric='manhattan' runs on the CPU engine only"):
        kde.score_samples(X)


# ---------------------------------------------------------------------------------- sampling
NORM_METRICS = [("manhattan", None), ("chebyshev", None), ("minkowski", {"p": 3}),
                ("minkowski", {"p": 0.5}), ("minkowski", {"p": 3, "w": [2.0, 0.5]}),
                ("seuclidean", {"V": [2.0, 0.5]}), ("mahalanobis", {"VI": np.array([[2.0, 0.6], [0.6, 1.0]])})]


@pytest.mark.parametrize(("metric", "params"), NORM_METRICS, ids=[f"{m}-{sorted(p) if p else ''}" for m, p in NORM_METRICS])
@pytest.mark.parametrize("kernel", ["gaussian", "tophat", "epanechnikov", "exponential", "cosine"])
def test_sample_radii_follow_the_kernel_under_the_metric(metric, params, kernel):
    """One training point at 0: D(s, 0)/h must have density ∝ k(r) r^(d−1) (its CDF from the
    unit kernel's radial law, integrated numerically)."""
    h, d = 0.7, 2
    kde = KernelDensity(kernel=kernel, bandwidth=h, metric=metric, metric_params=params).fit(np.zeros((1, d)))
    s = kde.sample(8000, random_state=12)
    radii = DistanceMetric.get_metric(metric, **(params or {})).pairwise(s, np.zeros((1, d)))[:, 0] / h
    reach = {"gaussian": 12.0, "exponential": 45.0}.get(kernel, 1.0)
    r = np.linspace(0.0, reach, 50_001)
    pdf = np.exp(kernel_profile_log(kernel, r)) * r ** (d - 1)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(r))])
    cdf /= cdf[-1]
    assert stats.kstest(radii, lambda x: np.interp(x, r, cdf)).pvalue > 1e-3
    if kernel in COMPACT_KERNELS:
        assert radii.max() < 1.0


def test_sample_directions_follow_the_metric_ball():
    """Tophat: uniform in the metric's ball. Chebyshev: each coordinate uniform on (−h, h);
    manhattan in 2-D: the first coordinate has the triangular density (1 − |x|/h)/h."""
    h = 0.5
    cheb = KernelDensity(kernel="tophat", bandwidth=h, metric="chebyshev").fit(np.zeros((1, 3)))
    s = cheb.sample(6000, random_state=13)
    for k in range(3):
        assert stats.kstest(s[:, k], stats.uniform(-h, 2 * h).cdf).pvalue > 1e-3
    manh = KernelDensity(kernel="tophat", bandwidth=h, metric="manhattan").fit(np.zeros((1, 2)))
    s = manh.sample(6000, random_state=14)
    assert stats.kstest(s[:, 0], stats.triang(0.5, loc=-h, scale=2 * h).cdf).pvalue > 1e-3
    # Power: euclidean directions scaled to the L1 radius do not pass.
    wrong = KernelDensity(kernel="tophat", bandwidth=h).fit(np.zeros((1, 2))).sample(6000, random_state=14)
    assert stats.kstest(wrong[:, 0], stats.triang(0.5, loc=-h, scale=2 * h).cdf).pvalue < 1e-6


def test_metric_samples_use_weights_adaptive_factors_and_equal_weights():
    X = np.array([[0.0, 0.0], [50.0, 0.0]])
    kde = KernelDensity(kernel="tophat", bandwidth=1.0, metric="manhattan").fit(X, sample_weight=[1.0, 3.0])
    s = kde.sample(4000, random_state=15)
    near_second = np.abs(s - X[1]).sum(axis=1) < 1.0
    assert np.all(near_second | (np.abs(s).sum(axis=1) < 1.0))
    assert near_second.mean() == pytest.approx(0.75, abs=0.03)
    Y = np.random.default_rng(16).normal(size=(30, 2))
    a = KernelDensity(metric="chebyshev", adaptive=True, bandwidth=0.6).fit(Y)
    b = KernelDensity(metric="chebyshev", adaptive=True, bandwidth=0.6).fit(Y, sample_weight=np.full(30, 4.0))
    np.testing.assert_array_equal(a.sample(50, random_state=3), b.sample(50, random_state=3))


@pytest.mark.parametrize(("metric", "params"), [
    ("manhattan", None), ("chebyshev", None), ("minkowski", {"p": 0.5}),
    ("minkowski", {"p": 3, "w": np.array([1.0, 0.0, 2.0])}), ("seuclidean", {"V": np.array([1.0, 2.0, 0.5])}),
])
@pytest.mark.parametrize("kernel", ["tophat", "epanechnikov", "cosine", "triweight"])
@pytest.mark.parametrize("adaptive", [False, True])
def test_pruned_tiles_of_compact_kernels_match_the_oracle(metric, params, kernel, adaptive):
    """n > one tile: compact kernels skip the tiles (k-d ordered boxes) outside the support;
    the sums equal the brute-force oracle, −inf pattern included."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(1500, 3))
    Q = np.vstack([rng.normal(size=(60, 3)) * 1.5, X[:5] + 1e-3, np.full((3, 3), 9.0)])
    w = rng.uniform(0.1, 2.0, 1500)
    kde = KernelDensity(kernel=kernel, bandwidth=0.4, metric=metric, metric_params=params,
                        adaptive=adaptive).fit(X, sample_weight=w)
    lam = None if not adaptive else kde.adaptive_factors_
    if adaptive:
        pilot = _oracle(X, X, metric, params, kernel, 0.4, w)
        np.testing.assert_allclose(lam, np.exp(-0.5 * (pilot - (w / w.sum()) @ pilot)), rtol=1e3 * EPS)
    ours = kde.score_samples(Q)
    oracle = _oracle(X, Q, metric, params, kernel, 0.4, w, lam)
    finite = np.isfinite(oracle)
    assert 0 < finite.sum() < len(Q)  # both inside and outside the support are exercised
    np.testing.assert_array_equal(np.isfinite(ours), finite)
    np.testing.assert_allclose(ours[finite], oracle[finite], rtol=1e3 * EPS, atol=1e3 * EPS)


@pytest.mark.parametrize("kernel", ["tophat", "epanechnikov"])
def test_pruned_haversine_tiles_match_the_oracle(kernel):
    """Haversine prunes tiles by their latitude gap (a lower bound of the great-circle angle)."""
    rng = np.random.default_rng(10)
    X = np.c_[rng.uniform(-1.5, 1.5, 1200), rng.uniform(-np.pi, np.pi, 1200)]
    Q = np.c_[rng.uniform(-1.5, 1.5, 40), rng.uniform(-np.pi, np.pi, 40)]
    Q[:3, 1] = np.pi - 1e-3  # across the date line from points near −π
    ours = KernelDensity(kernel=kernel, bandwidth=0.2, metric="haversine").fit(X).score_samples(Q)
    oracle = _oracle(X, Q, "haversine", None, kernel, 0.2)
    finite = np.isfinite(oracle)
    np.testing.assert_array_equal(np.isfinite(ours), finite)
    np.testing.assert_allclose(ours[finite], oracle[finite], rtol=1e3 * EPS, atol=1e3 * EPS)
