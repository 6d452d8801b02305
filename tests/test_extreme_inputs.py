"""Extreme but legal inputs: a finite log density, −inf, or a clear ValueError; never NaN, never a
crash, never a RuntimeWarning.

Property tests (hypothesis, derandomized, few examples so that they run in seconds) over
magnitudes from 1e-300 to the largest float64, 1.8e308, of either sign, for the queries of every
estimator and, where the estimator allows it, for the scale of the training data. Every warning
is an error inside the checks (``warnings.simplefilter("error")``) but scikit-learn's
``ConvergenceWarning``, which degenerate training data may rightly raise.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from fastdensity import GaussianMixture, KernelDensity, KNNDensity, gaussian_kde
from fastdensity.parametric import Beta, Exponential, Gamma, LogNormal, MultivariateNormal, Normal, Poisson

FMAX = np.finfo(np.float64).max
PROPERTY = settings(max_examples=12, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# A magnitude log-uniform between 1e-300 and FMAX, with the ends themselves drawn often.
magnitudes = st.one_of(
    st.sampled_from([1e-300, 1e-150, 1e300, FMAX, np.nextafter(FMAX, 0.0)]),
    st.floats(min_value=-300.0, max_value=308.25).map(lambda e: 10.0**e),
)
signed = st.tuples(magnitudes, st.sampled_from([1.0, -1.0])).map(lambda t: t[0] * t[1])


def queries(d, positive=False):
    """(3, d) query arrays of extreme entries (all positive for the positive-support fits)."""
    entry = magnitudes if positive else signed
    return st.lists(entry, min_size=3 * d, max_size=3 * d).map(lambda v: np.array(v).reshape(3, d))


def _base(d, positive=False, seed=0):
    """Training data with max |x| = 1 (so that any scale up to FMAX is finite)."""
    rng = np.random.default_rng(seed)
    X = rng.gamma(2.0, size=(60, d)) if positive else rng.normal(size=(60, d)) @ np.triu(np.ones((d, d)))
    return X / np.max(np.abs(X))


def _outcome(fit, score):
    """Run ``fit`` then ``score`` with every warning an error; return the scores, or None after a
    ValueError (which must say something)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            model = fit()
        except ValueError as exc:
            assert str(exc)
            return None
        try:
            out = np.asarray(score(model), dtype=np.float64)
        except ValueError as exc:
            assert str(exc)
            return None
    assert not np.any(np.isnan(out)), out
    return out


def _check_queries(make, X, Q, fit=None, score=None):
    fit = fit or (lambda: make().fit(X))
    score = score or (lambda model: model.score_samples(Q))
    return _outcome(fit, score)


# --------------------------------------------------------------------------- KernelDensity
KDE_CONFIGS = [
    {"kernel": "gaussian", "bandwidth": 1.0},
    {"kernel": "gaussian", "bandwidth": "scott"},
    {"kernel": "epanechnikov", "bandwidth": "silverman"},
    {"kernel": "exponential", "bandwidth": "scott", "adaptive": True},
    {"kernel": "tophat", "bandwidth": 0.3, "adaptive": True},
    {"kernel": "cosine", "bandwidth": "cv"},
    {"kernel": "gaussian", "bandwidth": "scott", "metric": "manhattan"},
    {"kernel": "biweight", "bandwidth": 0.5, "metric": "chebyshev"},
]


@pytest.mark.parametrize("config", KDE_CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
@PROPERTY
@given(Q=queries(2))
def test_kernel_density_extreme_queries(config, Q):
    out = _check_queries(lambda: KernelDensity(**config), _base(2), Q)
    assert out is not None  # a model fitted on ordinary data scores any finite query
    assert np.all(out < np.inf)


@pytest.mark.parametrize("config", KDE_CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
@PROPERTY
@given(scale=magnitudes, Q=queries(2))
def test_kernel_density_extreme_training_scale(config, scale, Q):
    X = _base(2) * scale
    _check_queries(lambda: KernelDensity(**config), X, np.vstack([Q, X[:2]]))


@PROPERTY
@given(Q=queries(1))
def test_kernel_density_isj_extreme_queries(Q):
    assert _check_queries(lambda: KernelDensity(bandwidth="isj"), _base(1, seed=1), Q) is not None


# -------------------------------------------------------------------------------- gaussian_kde
@PROPERTY
@given(Q=queries(2))
def test_gaussian_kde_extreme_queries(Q):
    out = _outcome(lambda: gaussian_kde(_base(2).T), lambda model: model.logpdf(Q.T))
    assert out is not None


@PROPERTY
@given(scale=magnitudes, Q=queries(2))
def test_gaussian_kde_extreme_training_scale(scale, Q):
    X = _base(2) * scale
    _outcome(lambda: gaussian_kde(X.T), lambda model: model.logpdf(np.vstack([Q, X[:2]]).T))


# ---------------------------------------------------------------------------------- KNNDensity
@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
@PROPERTY
@given(Q=queries(2))
def test_knn_density_extreme_queries(algorithm, Q):
    out = _check_queries(lambda: KNNDensity(n_neighbors=5, algorithm=algorithm), _base(2), Q)
    assert out is not None


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
@PROPERTY
@given(scale=magnitudes, Q=queries(2))
def test_knn_density_extreme_training_scale(algorithm, scale, Q):
    X = _base(2) * scale
    _check_queries(lambda: KNNDensity(n_neighbors=5, algorithm=algorithm), X, np.vstack([Q, X[:2]]))
    _outcome(lambda: KNNDensity(n_neighbors=5, algorithm=algorithm).fit(X), lambda m: m.score_samples(None))


# ----------------------------------------------------------------------------- GaussianMixture
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@PROPERTY
@given(Q=queries(2))
def test_gaussian_mixture_extreme_queries(covariance_type, Q):
    out = _check_queries(lambda: GaussianMixture(2, covariance_type=covariance_type, random_state=0),
                         _base(2), Q)
    assert out is not None


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@PROPERTY
@given(scale=magnitudes, Q=queries(2))
def test_gaussian_mixture_extreme_training_scale(covariance_type, scale, Q):
    X = _base(2) * scale
    _check_queries(lambda: GaussianMixture(2, covariance_type=covariance_type, random_state=0),
                   X, np.vstack([Q, X[:2]]))


# ------------------------------------------------------------------------- parametric fits
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@PROPERTY
@given(Q=queries(2))
def test_multivariate_normal_extreme_queries(covariance_type, Q):
    out = _check_queries(lambda: MultivariateNormal(covariance_type=covariance_type), _base(2), Q)
    assert out is not None


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@PROPERTY
@given(scale=magnitudes, Q=queries(2))
def test_multivariate_normal_extreme_training_scale(covariance_type, scale, Q):
    X = _base(2) * scale
    _check_queries(lambda: MultivariateNormal(covariance_type=covariance_type), X, np.vstack([Q, X[:2]]))


# Univariate fits: (estimator, training data with max |x| = 1 inside its support, whether the
# training data may be rescaled and stay in the support).
UNIVARIATE = [
    (Normal, _base(1)[:, 0], True),
    (Exponential, _base(1, positive=True)[:, 0], True),
    (Gamma, _base(1, positive=True)[:, 0], True),
    (LogNormal, _base(1, positive=True)[:, 0], True),
    (Poisson, np.round(_base(1, positive=True)[:, 0] * 8), False),
    (Beta, 0.05 + 0.9 * _base(1, positive=True)[:, 0], False),
]


@pytest.mark.parametrize(("cls", "x", "scalable"), UNIVARIATE, ids=[c.__name__ for c, _, _ in UNIVARIATE])
@PROPERTY
@given(Q=queries(1))
def test_univariate_fits_extreme_queries(cls, x, scalable, Q):
    out = _check_queries(cls, x, Q[:, 0])
    assert out is not None


@pytest.mark.parametrize(("cls", "x", "scalable"), [u for u in UNIVARIATE if u[2]],
                         ids=[c.__name__ for c, _, s in UNIVARIATE if s])
@PROPERTY
@given(scale=magnitudes, Q=queries(1))
def test_univariate_fits_extreme_training_scale(cls, x, scalable, scale, Q):
    xs = x * scale
    _check_queries(cls, xs, np.concatenate([Q[:, 0], xs[:2]]))


@PROPERTY
@given(counts=st.lists(magnitudes.map(np.floor), min_size=2, max_size=6))
def test_poisson_extreme_counts(counts):
    """Huge floats are integers: legal Poisson counts, for fitting and for scoring."""
    x = np.array(counts)
    _check_queries(Poisson, x, np.concatenate([x, [0.0, 1.0]]))
