"""compare(): one row per model, values equal to each model's own methods, a readable table."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity as SklearnKernelDensity

from fastdensity.kde._kde import KernelDensity
from fastdensity.parametric import ComparisonTable, Gamma, LogNormal, MultivariateNormal, Normal, compare


@pytest.fixture(scope="module")
def split():
    x = np.random.default_rng(0).gamma(3.0, 2.0, size=(300, 1))
    return x[:200], x[200:]


def test_compare_rows_match_each_models_methods(split):
    train, test = split
    models = {
        "gamma": Gamma().fit(train),
        "lognormal": LogNormal().fit(train),
        "normal": Normal().fit(train),
        "kde": KernelDensity(bandwidth="scott").fit(train),
    }
    table = compare(models, train, test)
    assert isinstance(table, ComparisonTable) and len(table) == 4
    assert table["name"] == ["gamma", "lognormal", "normal", "kde"]
    assert table.columns == ("name", "n_parameters", "train_log_likelihood", "test_log_likelihood", "aic", "bic")
    for row, (name, model) in zip(table, models.items()):
        assert set(row) == set(table.columns)
        assert row["test_log_likelihood"] == pytest.approx(np.mean(model.score_samples(test)), rel=1e-12)
        assert row["train_log_likelihood"] == pytest.approx(np.mean(model.score_samples(train)), rel=1e-12)
        if name == "kde":
            assert row["aic"] is None and row["bic"] is None and row["n_parameters"] is None
        else:
            assert row["n_parameters"] == 2
            assert row["aic"] == pytest.approx(model.aic(train), rel=1e-12)
            assert row["bic"] == pytest.approx(model.bic(train), rel=1e-12)
    # Gamma data: the gamma fit wins on held-out likelihood and on both criteria.
    parametric = table.rows[:3]
    assert max(parametric, key=lambda r: r["test_log_likelihood"])["name"] == "gamma"
    assert min(parametric, key=lambda r: r["bic"])["name"] == "gamma"


def test_compare_text_table(split):
    train, test = split
    table = compare({"gamma": Gamma().fit(train), "kde": KernelDensity().fit(train)}, train, test)
    lines = str(table).splitlines()
    assert len(lines) == 4
    assert lines[0].split() == ["model", "parameters", "train", "loglik", "test", "loglik", "AIC", "BIC"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[3].split()[0] == "kde" and lines[3].split().count("n/a") == 3
    assert f"{table[0]['aic']:.2f}" in lines[2]
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    assert repr(table) == str(table)


def test_compare_accepts_sequences_pairs_and_foreign_estimators():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 2))
    train, test = X[:80], X[80:]
    gm = GaussianMixture(n_components=2, random_state=0).fit(train)
    sk_kde = SklearnKernelDensity().fit(train)
    table = compare([MultivariateNormal().fit(train), MultivariateNormal().fit(train), gm, sk_kde], train, test)
    assert table["name"] == ["MultivariateNormal", "MultivariateNormal (2)", "GaussianMixture", "KernelDensity"]
    assert table[2]["n_parameters"] == gm._n_parameters()
    assert table[2]["bic"] == pytest.approx(gm.bic(train), rel=1e-12)
    assert table[3]["aic"] is None
    pairs = compare([("a", MultivariateNormal().fit(train))], train, test)
    assert pairs["name"] == ["a"] and pairs[0]["n_parameters"] == 5


def test_compare_minus_inf_for_held_out_points_outside_the_support():
    train = np.array([[1.0], [2.0], [3.5]])
    table = compare({"gamma": Gamma().fit(train)}, train, np.array([[-1.0], [2.0]]))
    assert table[0]["test_log_likelihood"] == -np.inf
    assert "-inf" in str(table)


def test_compare_errors(split):
    train, test = split
    with pytest.raises(NotFittedError, match="not fitted yet"):
        compare({"normal": Normal()}, train, test)
    with pytest.raises(TypeError, match="needs estimators with score_samples; 'x' is a str"):
        compare({"x": "not a model"}, train, test)
    with pytest.raises(ValueError, match="at least one model"):
        compare({}, train, test)
    table = compare({"normal": Normal().fit(train)}, train, test)
    with pytest.raises(KeyError, match="no column 'loglik'"):
        table["loglik"]
