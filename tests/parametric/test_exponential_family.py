"""Exponential-family fits against scipy.stats: MLEs, log densities, weights, support, sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fastdensity.parametric import Bernoulli, Beta, Categorical, Exponential, Gamma, LogNormal, Poisson


def _data(name, n=500, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "exponential": lambda: rng.exponential(2.5, n),
        "gamma": lambda: rng.gamma(2.7, 1.3, n),
        "lognormal": lambda: rng.lognormal(0.4, 0.8, n),
        "beta": lambda: rng.beta(0.7, 3.2, n),
        "poisson": lambda: rng.poisson(3.4, n).astype(float),
        "bernoulli": lambda: (rng.random(n) < 0.3).astype(float),
        "categorical": lambda: rng.choice(5, size=n, p=[0.1, 0.4, 0.2, 0.25, 0.05]).astype(float),
    }[name]()


# name, estimator, fitted parameters, scipy reference fit (or None), MLE tolerance
CONTINUOUS = {
    "exponential": (Exponential, lambda m: [m.scale_], lambda x: [stats.expon.fit(x, floc=0)[1]], 1e-12),
    "gamma": (Gamma, lambda m: [m.shape_, m.scale_], lambda x: np.array(stats.gamma.fit(x, floc=0))[[0, 2]], 1e-10),
    "lognormal": (
        LogNormal,
        lambda m: [m.sigma_, np.exp(m.mu_)],
        lambda x: np.array(stats.lognorm.fit(x, floc=0))[[0, 2]],
        1e-12,
    ),
    "beta": (Beta, lambda m: [m.a_, m.b_], lambda x: stats.beta.fit(x, floc=0, fscale=1)[:2], 1e-6),
}
DISCRETE = {
    "poisson": (Poisson, lambda m: [m.rate_], stats.poisson, {"mu": (0, 50)}),
    "bernoulli": (Bernoulli, lambda m: [m.p_], stats.bernoulli, {"p": (0, 1)}),
}
ALL = {
    "exponential": Exponential,
    "gamma": Gamma,
    "lognormal": LogNormal,
    "beta": Beta,
    "poisson": Poisson,
    "bernoulli": Bernoulli,
    "categorical": Categorical,
}


def _scipy_log_density(model, x):
    dist = model.to_scipy()
    return dist.logpmf(x) if model._discrete else dist.logpdf(x)


@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_continuous_fit_matches_scipy_fit(name):
    estimator, params, reference, rtol = CONTINUOUS[name]
    x = _data(name)
    model = estimator().fit(x)
    np.testing.assert_allclose(params(model), reference(x), rtol=rtol)
    # Where the reference comes from an iterative solver, ours must be at least as likely.
    if name == "beta":
        a, b = reference(x)
        assert model.score(x) >= np.mean(stats.beta.logpdf(x, a, b)) - 1e-14


@pytest.mark.parametrize("name", list(DISCRETE))
def test_discrete_fit_matches_closed_form_and_scipy_fit(name):
    estimator, params, dist, bounds = DISCRETE[name]
    x = _data(name)
    model = estimator().fit(x)
    np.testing.assert_allclose(params(model), [x.mean()], rtol=1e-14)
    numerical = stats.fit(dist, x.astype(int), bounds=bounds)
    np.testing.assert_allclose(params(model), list(numerical.params)[:1], rtol=1e-4)


def test_categorical_fit_is_the_label_frequencies():
    x = _data("categorical")
    model = Categorical().fit(x)
    np.testing.assert_allclose(model.probabilities_, np.bincount(x.astype(int)) / x.size, rtol=1e-14)
    assert model.n_categories_ == 5 and model.n_parameters_ == 4


@pytest.mark.parametrize("name", list(ALL))
def test_log_density_matches_scipy(name):
    x = _data(name)
    model = ALL[name]().fit(x)
    queries = np.concatenate([x[:100], {
        "exponential": [0.0, 1e-3, 50.0],
        "gamma": [1e-8, 1e-3, 50.0],
        "lognormal": [1e-8, 1e3],
        "beta": [1e-9, 0.5, 1 - 1e-9],
        "poisson": [0.0, 20.0, 60.0],
        "bernoulli": [0.0, 1.0],
        "categorical": [0.0, 4.0],
    }[name]])
    np.testing.assert_allclose(model.score_samples(queries), _scipy_log_density(model, queries), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model.cdf(queries), model.to_scipy().cdf(queries), rtol=1e-12)
    q = np.linspace(0.05, 0.95, 9)
    np.testing.assert_allclose(model.ppf(q), model.to_scipy().ppf(q), rtol=1e-12)


OUTSIDE = {
    "exponential": [-1e-3, -5.0],
    "gamma": [0.0, -2.0],
    "lognormal": [0.0, -1.0],
    "beta": [0.0, 1.0, -0.5, 1.5],
    "poisson": [-1.0, 1.5, 2.000001],
    "bernoulli": [-1.0, 0.5, 2.0],
    "categorical": [-1.0, 1.5, 5.0, 17.0],
}


@pytest.mark.parametrize("name", list(ALL))
def test_score_samples_is_minus_inf_outside_the_support(name):
    model = ALL[name]().fit(_data(name))
    points = np.array(OUTSIDE[name])
    assert np.all(model.score_samples(points) == -np.inf)


@pytest.mark.parametrize(
    "estimator, data, pattern",
    [
        (Exponential, [1.0, -2.0, -3.0], r"exponential distribution is supported on \[0, inf\).*-2\.0.*of 2"),
        (Gamma, [1.0, 0.0, 2.0], r"gamma distribution is supported on \(0, inf\).*0\.0"),
        (LogNormal, [1.0, 3.0, -0.5], r"log-normal distribution is supported on \(0, inf\).*-0\.5"),
        (Beta, [0.2, 1.0, 0.5], r"beta distribution is supported on the open interval \(0, 1\).*1\.0"),
        (Poisson, [1.0, -3.0, 2.0], r"Poisson distribution is supported on the non-negative integers.*-3\.0"),
        (Poisson, [1.0, 2.5, 2.0], r"Poisson distribution is supported on the non-negative integers.*2\.5"),
        (Bernoulli, [0.0, 1.0, 2.0], r"Bernoulli distribution is supported on \{0, 1\}.*2\.0"),
        (Bernoulli, [0.0, 0.3], r"Bernoulli.*0\.3"),
        (Categorical, [0.0, 1.0, 0.5], r"categorical distribution is supported on the integer labels.*0\.5"),
        (Categorical, [0.0, -1.0], r"categorical.*-1\.0"),
    ],
)
def test_fit_rejects_data_outside_the_support(estimator, data, pattern):
    with pytest.raises(ValueError, match=pattern):
        estimator().fit(np.array(data))


def test_zero_weight_rows_are_not_checked_against_the_support():
    model = Gamma().fit([1.0, -5.0, 2.0, 4.0], sample_weight=[1, 0, 1, 1])
    reference = Gamma().fit([1.0, 2.0, 4.0])
    assert model.shape_ == reference.shape_ and model.scale_ == reference.scale_


@pytest.mark.parametrize(
    "estimator, data, pattern",
    [
        (Gamma, [2.0, 2.0, 2.0], "gamma maximum-likelihood fit needs at least two distinct values"),
        (LogNormal, [3.0, 3.0], "log-normal maximum-likelihood fit needs at least two distinct values"),
        (Beta, [0.5, 0.5], "beta maximum-likelihood fit needs at least two distinct values"),
        (Exponential, [0.0, 0.0], "exponential maximum-likelihood fit needs a positive mean"),
    ],
)
def test_degenerate_data_errors(estimator, data, pattern):
    with pytest.raises(ValueError, match=pattern):
        estimator().fit(data)


@pytest.mark.parametrize("name", list(ALL))
def test_weighted_fit_equals_repeated_rows_and_is_scale_free(name):
    rng = np.random.default_rng(1)
    x = _data(name, n=60, seed=2)
    w = rng.integers(0, 4, size=x.size)
    weighted = ALL[name]().fit(x, sample_weight=w)
    repeated = ALL[name]().fit(np.repeat(x, w))
    scaled = ALL[name]().fit(x, sample_weight=w * 0.37)
    queries = np.unique(x)
    for other in (repeated, scaled):
        np.testing.assert_allclose(weighted.score_samples(queries), other.score_samples(queries), rtol=1e-10)


def test_gamma_large_shape_from_nearly_constant_data():
    # s = log mean − mean log ≈ 1e-12: the shape is ≈ 5e11. Computing s as a difference of
    # logs would lose most digits; the fit must still satisfy its own likelihood equation.
    import mpmath

    rng = np.random.default_rng(3)
    x = 7.0 * (1 + 1e-6 * rng.standard_normal(200))
    model = Gamma().fit(x)
    mpmath.mp.dps = 50
    xs = [mpmath.mpf(float(v)) for v in x]
    mean = mpmath.fsum(xs) / len(xs)
    s = mpmath.log(mean) - mpmath.fsum(mpmath.log(v) for v in xs) / len(xs)
    k = mpmath.findroot(lambda k: mpmath.log(k) - mpmath.digamma(k) - s, 1 / (2 * s))
    assert model.shape_ == pytest.approx(float(k), rel=1e-8)
    assert model.shape_ * model.scale_ == pytest.approx(float(mean), rel=1e-14)


@pytest.mark.parametrize("a, b", [(0.05, 0.08), (0.6, 40.0), (300.0, 200.0)])
def test_beta_fit_across_shapes(a, b):
    x = np.random.default_rng(4).beta(a, b, 2000)
    x = x[(x > 0) & (x < 1)]
    model = Beta().fit(x)
    ref_a, ref_b = stats.beta.fit(x, floc=0, fscale=1)[:2]
    np.testing.assert_allclose([model.a_, model.b_], [ref_a, ref_b], rtol=1e-5)
    assert model.score(x) >= np.mean(stats.beta.logpdf(x, ref_a, ref_b)) - 1e-14


def test_poisson_all_zeros_is_a_point_mass():
    model = Poisson().fit(np.zeros(5))
    assert model.rate_ == 0.0
    np.testing.assert_array_equal(model.score_samples([0.0, 1.0]), [0.0, -np.inf])
    np.testing.assert_array_equal(model.sample(4, random_state=0), np.zeros((4, 1)))


def test_categorical_options():
    x = np.array([0, 1, 1, 3])
    model = Categorical(n_categories=6).fit(x)
    np.testing.assert_allclose(model.probabilities_, [0.25, 0.5, 0, 0.25, 0, 0])
    assert model.n_parameters_ == 5
    assert model.score_samples([2, 5, 6]).tolist() == [-np.inf, -np.inf, -np.inf]
    smoothed = Categorical(n_categories=6, alpha=1.0).fit(x)
    np.testing.assert_allclose(smoothed.probabilities_, np.array([2, 3, 1, 2, 1, 1]) / 10)
    with pytest.raises(ValueError, match=r"categorical.*n_categories - 1 = 2.*3\.0"):
        Categorical(n_categories=3).fit(x)
    with pytest.raises(ValueError, match="n_categories must be a positive integer"):
        Categorical(n_categories=0).fit(x)
    with pytest.raises(ValueError, match="alpha must be a non-negative"):
        Categorical(alpha=-1).fit(x)
    # A refit looks at its own labels.
    model = Categorical().fit([0, 1, 7])
    assert Categorical().fit([0, 1, 7]).fit([0, 1]).n_categories_ == 2 and model.n_categories_ == 8


# Expected mean and variance of each fitted distribution.
def _moments(model):
    if isinstance(model, Categorical):
        k = np.arange(model.n_categories_)
        mean = model.probabilities_ @ k
        return mean, model.probabilities_ @ (k - mean) ** 2
    return model.to_scipy().stats(moments="mv")


@pytest.mark.parametrize("name", list(ALL))
def test_sampling_moments_and_dtypes(name):
    model = ALL[name]().fit(_data(name))
    n = 40_000
    draws = model.sample(n, random_state=np.random.default_rng(5))
    assert draws.shape == (n, 1)
    assert draws.dtype == (np.int64 if model._discrete else np.float64)
    assert np.all(np.isfinite(model.score_samples(draws)))
    mean, var = (float(v) for v in _moments(model))
    assert abs(draws.mean() - mean) < 5 * np.sqrt(var / n)
    fourth = stats.moment(draws[:, 0].astype(float), 4)
    assert abs(draws.var() - var) < 5 * np.sqrt(max(fourth - var**2, 0) / n) + 1e-12


@pytest.mark.parametrize("name", list(ALL))
def test_aic_bic_and_n_parameters(name):
    x = _data(name, n=100)
    model = ALL[name]().fit(x)
    k = {"gamma": 2, "lognormal": 2, "beta": 2, "categorical": 4}.get(name, 1)
    assert model.n_parameters_ == k
    total = np.sum(_scipy_log_density(model, x))
    assert model.aic(x) == pytest.approx(-2 * total + 2 * k, rel=1e-12)
    assert model.bic(x) == pytest.approx(-2 * total + k * np.log(100), rel=1e-12)
    assert model.score(x) == pytest.approx(total / 100, rel=1e-12)


def test_ppf_rejects_probabilities_outside_the_unit_interval():
    model = Exponential().fit([1.0, 2.0])
    with pytest.raises(ValueError, match=r"probabilities q in \[0, 1\]"):
        model.ppf([0.5, 1.5])
