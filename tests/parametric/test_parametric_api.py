"""The scikit-learn estimator contract for every parametric estimator.

MultivariateNormal runs scikit-learn's full ``check_estimator`` suite. The univariate
distributions cannot: the suite feeds Gaussian data with 2 to 30 features (and 1-D arrays that
it expects to be rejected), so for a one-feature distribution, and even more for one restricted
to counts or (0, 1), most checks fail on the data rather than on the API. They run the
suite's data-free checks as they are and explicit equivalents of the data-dependent ones, on data
inside each support.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastdensity.parametric import (
    Bernoulli,
    Beta,
    Categorical,
    Exponential,
    Gamma,
    LogNormal,
    MultivariateNormal,
    Normal,
    Poisson,
)


@parametrize_with_checks(
    [
        MultivariateNormal(),
        MultivariateNormal(covariance_type="diag"),
        MultivariateNormal(covariance_type="spherical", reg_covar=1e-3),
    ]
)
def test_multivariate_normal_passes_check_estimator(estimator, check):
    check(estimator)


def _data(estimator, n=40, seed=0):
    rng = np.random.default_rng(seed)
    kind = type(estimator).__name__
    x = {
        "Normal": lambda: rng.normal(size=n),
        "Exponential": lambda: rng.exponential(size=n),
        "Gamma": lambda: rng.gamma(2.0, size=n),
        "LogNormal": lambda: rng.lognormal(size=n),
        "Beta": lambda: rng.beta(2.0, 3.0, size=n),
        "Poisson": lambda: rng.poisson(2.0, size=n).astype(float),
        "Bernoulli": lambda: rng.integers(0, 2, size=n).astype(float),
        "Categorical": lambda: rng.integers(0, 4, size=n).astype(float),
    }[kind]()
    return x[:, None]


UNIVARIATE = [
    Normal(),
    Normal(reg_covar=0.1),
    Exponential(),
    Gamma(),
    LogNormal(),
    Beta(),
    Poisson(),
    Bernoulli(),
    Categorical(),
    Categorical(n_categories=6, alpha=0.5),
]
IDS = [repr(e) for e in UNIVARIATE]
# scikit-learn's checks that never fit: they apply to every estimator unchanged.
DATA_FREE_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_get_params_invariance",
    "check_set_params",
    "check_parameters_default_constructible",
    "check_estimator_repr",
    "check_estimator_cloneable",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
]


@pytest.mark.parametrize("check_name", DATA_FREE_CHECKS)
@pytest.mark.parametrize("estimator", UNIVARIATE, ids=IDS)
def test_univariate_data_free_sklearn_checks(estimator, check_name):
    getattr(estimator_checks, check_name)(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", UNIVARIATE, ids=IDS)
def test_univariate_fit_contract(estimator):
    X = _data(estimator)
    params = estimator.get_params()
    cloned = clone(estimator)
    assert cloned.get_params() == params
    fitted = cloned.fit(X)
    assert fitted is cloned  # fit returns self
    assert cloned.get_params() == params  # fit leaves the parameters alone
    assert cloned.n_features_in_ == 1
    assert not hasattr(clone(cloned), "n_parameters_")  # a clone is unfitted
    first = cloned.score_samples(X)
    # Idempotent: refitting, also after a fit on other data, gives the same model.
    cloned.fit(_data(estimator, seed=1)).fit(X)
    np.testing.assert_array_equal(cloned.score_samples(X), first)
    # 1-D and column input, lists and read-only arrays are the same data.
    readonly = X.copy()
    readonly.flags.writeable = False
    for same in (X[:, 0], X.tolist(), readonly):
        np.testing.assert_array_equal(clone(estimator).fit(same).score_samples(X), first)


@pytest.mark.parametrize("estimator", UNIVARIATE, ids=IDS)
def test_univariate_not_fitted_errors(estimator):
    X = _data(estimator)
    unfitted = clone(estimator)
    for call in (
        lambda: unfitted.score_samples(X),
        lambda: unfitted.score(X),
        lambda: unfitted.aic(X),
        lambda: unfitted.bic(X),
        lambda: unfitted.sample(2),
        lambda: unfitted.cdf(X),
        lambda: unfitted.ppf([0.5]),
        lambda: unfitted.to_scipy(),
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


@pytest.mark.parametrize("estimator", UNIVARIATE, ids=IDS)
def test_univariate_input_errors(estimator):
    X = _data(estimator)
    model = clone(estimator).fit(X)
    with pytest.raises(ValueError, match="univariate distribution.*got 2 features"):
        clone(estimator).fit(np.hstack([X, X]))
    with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 1 features"):
        model.score_samples(np.hstack([X, X]))
    for bad, pattern in ((np.nan, "NaN"), (np.inf, "infinity")):
        Xbad = X.copy()
        Xbad[3] = bad
        with pytest.raises(ValueError, match=pattern):
            clone(estimator).fit(Xbad)
        with pytest.raises(ValueError, match=pattern):
            model.score_samples(Xbad)
    with pytest.raises(ValueError, match="0 sample"):
        clone(estimator).fit(np.zeros((0, 1)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        clone(estimator).fit(X + 1j)
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="Sparse data was passed"):
        clone(estimator).fit(sparse.csr_matrix(X))
    with pytest.raises(ValueError, match="n_samples must be a non-negative integer"):
        model.sample(-1)


@pytest.mark.parametrize(
    "weights, pattern",
    [
        (-np.ones(40), "Negative values in data passed to `sample_weight`"),
        (np.r_[np.nan, np.ones(39)], "sample_weight contains NaN"),
        (np.r_[np.inf, np.ones(39)], "infinity"),
        (np.ones(3), r"sample_weight.shape == \(3,\), expected \(40,\)"),
        (np.zeros(40), "at least one non-zero"),
    ],
)
@pytest.mark.parametrize("estimator", [Normal(), Gamma(), Categorical()], ids=repr)
def test_sample_weight_errors(estimator, weights, pattern):
    with pytest.raises(ValueError, match=pattern):
        clone(estimator).fit(_data(estimator), sample_weight=weights)


@pytest.mark.parametrize("estimator", UNIVARIATE, ids=IDS)
def test_univariate_scores_are_row_wise_and_pickle_safe(estimator):
    X = _data(estimator)
    model = clone(estimator).fit(X)
    full = model.score_samples(X)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_array_equal(model.score_samples(X[order]), full[order])
    np.testing.assert_array_equal(model.score_samples(X[5:9]), full[5:9])
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.score_samples(X), full)
    assert model.score(X) == pytest.approx(np.mean(full), rel=1e-14)


def test_feature_names_are_recorded():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"height": [1.5, 1.7, 1.8, 1.6]})
    model = Normal().fit(frame)
    assert list(model.feature_names_in_) == ["height"]
    assert np.all(np.isfinite(model.score_samples(frame)))


def test_a_failed_fit_leaves_the_estimator_as_it_was():
    rng = np.random.default_rng(3)
    model = MultivariateNormal(reg_covar=0.0).fit(rng.normal(size=(30, 2)))
    before = {k: np.copy(v) for k, v in vars(model).items()}
    collinear = np.repeat(rng.normal(size=(30, 1)), 3, axis=1)
    with pytest.raises(ValueError, match="not positive definite"):
        model.fit(collinear)
    assert model.n_features_in_ == 2 and set(vars(model)) == set(before)
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(model, key), value)
    unfitted = Gamma()
    with pytest.raises(ValueError, match="gamma distribution is supported on"):
        unfitted.fit([1.0, -1.0])
    assert not hasattr(unfitted, "n_features_in_")


@pytest.mark.parametrize(
    "name, make_data",
    [
        ("Normal", lambda rng: rng.normal(size=(60, 1))),
        ("MultivariateNormal", lambda rng: rng.normal(size=(60, 3))),
        ("Exponential", lambda rng: rng.exponential(size=(60, 1))),
        ("Poisson", lambda rng: rng.poisson(3.0, size=(60, 1)).astype(float)),
        ("Bernoulli", lambda rng: rng.integers(0, 2, size=(60, 1)).astype(float)),
        ("Gamma", lambda rng: rng.gamma(2.0, size=(60, 1))),
        ("LogNormal", lambda rng: rng.lognormal(size=(60, 1))),
        ("Beta", lambda rng: rng.beta(2.0, 3.0, size=(60, 1))),
        ("Categorical", lambda rng: rng.integers(0, 4, size=(60, 1))),
    ],
)
def test_save_load_round_trip(name, make_data, tmp_path):
    import fastdensity

    rng = np.random.default_rng(7)
    X = make_data(rng)
    estimator = getattr(fastdensity, name)().fit(X)
    path = tmp_path / f"{name}.npz"
    fastdensity.save(estimator, path)
    loaded = fastdensity.load(path)
    assert type(loaded) is type(estimator)
    np.testing.assert_array_equal(loaded.score_samples(X), estimator.score_samples(X))
