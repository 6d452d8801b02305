"""KernelDensity.sample: moments, distribution (KS against the KDE's own CDF), reproducibility.

The theoretical moments are computed independently of the kernel table's closed forms: the
kernel's coordinate variance comes from radial integrals done by scipy quad over the profile.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from fastdensity import KernelDensity
from fastdensity.kde._kernels import COMPACT_KERNELS, KERNELS, kernel_profile_log


def unit_kernel_coordinate_variance(kernel: str, d: int) -> float:
    """E[x_1²] for x drawn from the unit kernel in d dimensions: ∫k r^{d+1} / (d ∫k r^{d−1})."""
    upper = 1.0 if kernel in COMPACT_KERNELS else np.inf

    def radial(power):
        val, _ = integrate.quad(lambda r: math.exp(kernel_profile_log(kernel, np.array(r))) * r**power,
                                0.0, upper, epsabs=0, epsrel=1e-12, limit=200)
        return val

    return radial(d + 1) / (d * radial(d - 1))


def mixture_moments(kde):
    """Mean and covariance of the fitted KDE: Σ ŵ x_j and Σ ŵ (x_j − μ)(x_j − μ)ᵀ + Σ ŵ λ_j² v H."""
    X = np.asarray(kde.training_data_, dtype=np.float64)
    n, d = X.shape
    w = np.ones(n) if kde.sample_weight_ is None else np.asarray(kde.sample_weight_, dtype=np.float64)
    w = w / w.sum()
    lam2 = np.ones(n) if kde.adaptive_factors_ is None else np.asarray(kde.adaptive_factors_) ** 2
    mean = w @ X
    centred = X - mean
    between = (w[:, None] * centred).T @ centred
    within = np.sum(w * lam2) * unit_kernel_coordinate_variance(kde.kernel, d) * kde.bandwidth_matrix_
    return mean, between + within


def assert_moments_match(samples, mean, cov, n_se=5.0):
    """Sample mean and covariance within ``n_se`` standard errors of the theory (fixed seed)."""
    N = len(samples)
    sample_mean = samples.mean(axis=0)
    se_mean = np.sqrt(np.diag(cov) / N)
    np.testing.assert_array_less(np.abs(sample_mean - mean), n_se * se_mean)
    c = samples - mean  # the true mean: the products are i.i.d. with expectation cov
    products = c[:, :, None] * c[:, None, :]
    se_cov = products.std(axis=0) / np.sqrt(N)
    np.testing.assert_array_less(np.abs(products.mean(axis=0) - cov), n_se * se_cov)


def kde_cdf(kde, lo, hi, n_grid=60_001):
    """The KDE's CDF on [lo, hi] by the trapezoid rule over exp(score_samples) (1-D)."""
    grid = np.linspace(lo, hi, n_grid)
    pdf = np.exp(kde.score_samples(grid[:, None]))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    return grid, cdf


def test_unit_kernel_variances_agree_with_the_kernel_table():
    from fastdensity.kde._kernels import kernel_coordinate_variance

    for kernel in KERNELS:
        for d in (1, 2, 3):
            assert kernel_coordinate_variance(kernel, d) == pytest.approx(
                unit_kernel_coordinate_variance(kernel, d), rel=1e-10), (kernel, d)


# ------------------------------------------------------------------------------- moments
CONFIGS = ("scalar", "per_feature_weighted", "matrix_weighted", "matrix_adaptive")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("config", CONFIGS)
def test_sample_moments(kernel, config):
    rng = np.random.default_rng(100 + CONFIGS.index(config))
    X = np.concatenate([rng.normal(size=(12, 2)), rng.normal(loc=[3.0, -1.0], scale=0.3, size=(6, 2))])
    w = None if config == "scalar" else rng.uniform(0.1, 3.0, size=len(X))
    bandwidth = {
        "scalar": 0.7,
        "per_feature_weighted": np.array([0.4, 1.3]),
        "matrix_weighted": np.array([[0.5, 0.3], [0.3, 0.4]]),
        "matrix_adaptive": np.array([[0.5, -0.2], [-0.2, 0.3]]),
    }[config]
    kde = KernelDensity(kernel=kernel, bandwidth=bandwidth, adaptive=config == "matrix_adaptive")
    kde.fit(X, sample_weight=w)
    samples = kde.sample(200_000, random_state=np.random.RandomState(7))
    assert samples.shape == (200_000, 2) and samples.dtype == np.float64
    assert np.isfinite(samples).all()
    mean, cov = mixture_moments(kde)
    assert_moments_match(samples, mean, cov)


@pytest.mark.parametrize("kernel", sorted(COMPACT_KERNELS))
def test_compact_samples_lie_in_the_support(kernel):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(10, 2))
    H = np.array([[0.5, 0.3], [0.3, 0.4]])
    kde = KernelDensity(kernel=kernel, bandwidth=H, adaptive=True).fit(X)
    samples = kde.sample(20_000, random_state=1)
    assert np.isfinite(kde.score_samples(samples)).all()


# ------------------------------------------------------------------------------ KS tests
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("adaptive", [False, True], ids=["fixed", "adaptive"])
def test_ks_against_the_kde_cdf_1d(kernel, adaptive):
    rng = np.random.default_rng(200)
    X = np.concatenate([rng.normal(size=(8, 1)), rng.normal(loc=4.0, scale=0.2, size=(4, 1))])
    w = rng.uniform(0.2, 2.0, size=len(X))
    kde = KernelDensity(kernel=kernel, bandwidth=0.6, adaptive=adaptive).fit(X, sample_weight=w)
    reach = {"gaussian": 10.0, "exponential": 40.0}.get(kernel, 1.0) * 0.6 * (
        1.0 if kde.adaptive_factors_ is None else kde.adaptive_factors_.max())
    grid, cdf = kde_cdf(kde, X.min() - reach, X.max() + reach)
    assert cdf[-1] == pytest.approx(1.0, abs=1e-4)
    samples = kde.sample(5000, random_state=3)[:, 0]
    result = stats.kstest(samples, lambda s: np.interp(s, grid, cdf))
    assert result.pvalue > 1e-3


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_ks_of_sample_radii_for_a_single_point(kernel, d):
    """One training point: the KDE is the kernel itself, so the radii of its samples must follow
    S_{d−1} r^{d−1} f(r e₁), integrated numerically from score_samples. Sharp: nothing else
    (mixture spread, weights) dilutes a wrong radial law."""
    h = 0.8
    kde = KernelDensity(kernel=kernel, bandwidth=h).fit(np.zeros((1, d)))
    reach = {"gaussian": 12.0, "exponential": 45.0}.get(kernel, 1.0) * h
    r = np.linspace(0.0, reach, 100_001)
    points = np.zeros((len(r), d))
    points[:, 0] = r
    log_sphere = math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)
    pdf = np.exp(log_sphere + kde.score_samples(points)) * r ** (d - 1)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(r))])
    assert cdf[-1] == pytest.approx(1.0, abs=1e-4)
    samples = kde.sample(20_000, random_state=11)
    radii = np.linalg.norm(samples, axis=1)
    assert stats.kstest(radii, lambda s: np.interp(s, r, cdf)).pvalue > 1e-3
    if kernel in COMPACT_KERNELS:
        assert radii.max() < h


def test_ks_detects_a_wrong_distribution():
    # Power check for the KS test above: a KDE's samples against a clearly different KDE's CDF.
    X = np.random.default_rng(201).normal(size=(12, 1))
    kde = KernelDensity(kernel="epanechnikov", bandwidth=0.6).fit(X)
    other = KernelDensity(kernel="epanechnikov", bandwidth=0.9).fit(X)
    grid, cdf = kde_cdf(other, X.min() - 1.0, X.max() + 1.0)
    samples = kde.sample(5000, random_state=3)[:, 0]
    assert stats.kstest(samples, lambda s: np.interp(s, grid, cdf)).pvalue < 1e-3


# ------------------------------------------------------------------------ reproducibility
@pytest.fixture
def fitted():
    X = np.random.default_rng(300).normal(size=(30, 2))
    return KernelDensity(kernel="biweight", bandwidth=0.5).fit(X)


def test_random_state_reproducibility(fitted):
    a = fitted.sample(50, random_state=42)
    np.testing.assert_array_equal(a, fitted.sample(50, random_state=42))
    np.testing.assert_array_equal(a, fitted.sample(50, random_state=np.random.RandomState(42)))
    assert not np.array_equal(a, fitted.sample(50, random_state=43))
    # One RandomState instance advances between calls.
    rs = np.random.RandomState(0)
    assert not np.array_equal(fitted.sample(50, random_state=rs), fitted.sample(50, random_state=rs))


def test_random_state_none_uses_global_state(fitted):
    saved = np.random.get_state()
    try:
        np.random.seed(5)
        a = fitted.sample(20)
        np.random.seed(5)
        np.testing.assert_array_equal(a, fitted.sample(20))
    finally:
        np.random.set_state(saved)


def test_sample_zero(fitted):
    out = fitted.sample(0, random_state=0)
    assert out.shape == (0, 2) and out.dtype == np.float64


def test_sample_default_is_one_row(fitted):
    assert fitted.sample(random_state=0).shape == (1, 2)


def test_sample_accepts_numpy_integers(fitted):
    assert fitted.sample(np.int64(4), random_state=0).shape == (4, 2)


@pytest.mark.parametrize("n_samples", [-1, 2.0, "5", None, True])
def test_bad_n_samples(fitted, n_samples):
    with pytest.raises(ValueError, match="n_samples must be a non-negative integer"):
        fitted.sample(n_samples)


def test_float32_model_samples_float32():
    X = np.random.default_rng(301).normal(size=(30, 1)).astype(np.float32)
    samples = KernelDensity(kernel="cosine", bandwidth=0.3).fit(X).sample(10, random_state=0)
    assert samples.dtype == np.float32 and samples.shape == (10, 1)


def test_zero_weight_points_are_never_sampled():
    X = np.array([[0.0], [100.0], [200.0]])
    kde = KernelDensity(kernel="tophat", bandwidth=1.0).fit(X, sample_weight=[1.0, 0.0, 2.0])
    s = kde.sample(3000, random_state=0)[:, 0]
    assert np.all((np.abs(s) < 1) | (np.abs(s - 200) < 1))
    assert np.mean(np.abs(s - 200) < 1) == pytest.approx(2 / 3, abs=0.04)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bandwidth, adaptive", [(0.4, False), ("scott", False), (0.4, True), ("silverman", True)])
@pytest.mark.parametrize("weight", [1.0, 2.5, 1e-3])
def test_equal_weights_draw_exactly_the_unweighted_points(kernel, bandwidth, adaptive, weight):
    """Constant sample_weight is no weight: the same draws (and densities) to the last bit."""
    X = np.random.default_rng(302).normal(size=(40, 2))
    plain = KernelDensity(kernel=kernel, bandwidth=bandwidth, adaptive=adaptive).fit(X)
    weighted = KernelDensity(kernel=kernel, bandwidth=bandwidth, adaptive=adaptive).fit(
        X, sample_weight=np.full(40, weight)
    )
    np.testing.assert_array_equal(weighted.sample(200, random_state=7), plain.sample(200, random_state=7))
    np.testing.assert_array_equal(weighted.score_samples(X[:5]), plain.score_samples(X[:5]))
    np.testing.assert_array_equal(weighted.sample_weight_, np.full(40, weight))


def test_unequal_weights_still_follow_the_weights():
    X = np.array([[0.0], [100.0]])
    kde = KernelDensity(kernel="tophat", bandwidth=1.0).fit(X, sample_weight=[1.0, 3.0])
    s = kde.sample(4000, random_state=0)[:, 0]
    assert np.mean(np.abs(s - 100) < 1) == pytest.approx(3 / 4, abs=0.03)
