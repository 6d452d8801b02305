"""fastdensity.bandwidth.select: every rule's bandwidth, K-fold held-out log-likelihood and fit time."""

from __future__ import annotations

import numpy as np
import pytest

import fastdensity.bandwidth
from fastdensity import KernelDensity
from fastdensity.bandwidth import BandwidthTable, select


def _kfold_oracle(X, method, n_folds, seed, w=None, kernel="gaussian"):
    """Pooled held-out mean log density by a plain K-fold loop (the documented split)."""
    n = X.shape[0]
    order = np.random.default_rng(seed).permutation(n)
    total, weight = 0.0, 0.0
    for test in np.array_split(order, n_folds):
        train = np.ones(n, bool)
        train[test] = False
        kde = KernelDensity(bandwidth=method, kernel=kernel).fit(X[train], sample_weight=None if w is None else w[train])
        ld = kde.score_samples(X[test])
        tw = np.ones(test.size) if w is None else w[test]
        total += np.sum(tw * ld)
        weight += np.sum(tw)
    return total / weight


def test_default_methods_in_one_dimension_match_a_kfold_oracle():
    x = np.random.default_rng(50).standard_normal(300)
    table = select(x)
    assert isinstance(table, BandwidthTable)
    assert table["method"] == list(fastdensity.bandwidth.DEFAULT_METHODS_1D)
    for row in table:
        assert row["note"] is None
        # The bandwidth is the one KernelDensity fits on all the data.
        assert row["bandwidth"] == KernelDensity(bandwidth=row["method"]).fit(x[:, None]).bandwidth_
        # Pooled mean over folds of sums in float64: a few ulps of rounding apart.
        assert row["heldout_log_likelihood"] == pytest.approx(
            _kfold_oracle(x[:, None], row["method"], 5, 0), rel=1e-12)
        assert len(row["fold_log_likelihoods"]) == 5
        assert row["fit_seconds"] > 0
    # On normal data every rule is near the normal-reference optimum: their held-out scores agree
    # to within the folds' spread.
    scores = np.array(table["heldout_log_likelihood"])
    assert np.ptp(scores) < max(table["fold_sd"])
    assert table.best["heldout_log_likelihood"] == scores.max()


def test_multivariate_defaults_numbers_and_weights():
    rng = np.random.default_rng(51)
    X = rng.standard_normal((200, 2)) @ np.array([[1.0, 0.5], [0.0, 0.7]])
    w = rng.uniform(0.5, 2.0, 200)
    table = select(X, [0.3, "scott"], sample_weight=w, n_folds=4, random_state=3)
    assert table["method"] == ["0.3", "scott"]
    for row, method in zip(table, [0.3, "scott"]):
        assert row["heldout_log_likelihood"] == pytest.approx(_kfold_oracle(X, method, 4, 3, w), rel=1e-12)
        assert row["bandwidth_matrix"].shape == (2, 2)
    assert select(X)["method"] == list(fastdensity.bandwidth.DEFAULT_METHODS)


def test_a_failing_rule_is_a_row_not_an_error():
    X = np.random.default_rng(52).standard_normal((100, 2))
    table = select(X, ["scott", "isj"])
    failed = table[1]
    assert failed["bandwidth"] is None and np.isnan(failed["heldout_log_likelihood"])
    assert failed["note"].startswith('failed: bandwidth="isj" is for 1-D data')
    text = str(table)
    assert "failed" in text and "notes:" in text


def test_fallback_warnings_are_recorded_in_the_note():
    x = np.tile([0.0, 1.0, 2.0], 100)
    table = select(x, ["sj"], n_folds=2)
    assert "fallback max(Silverman's rule, δ)" in table[0]["note"]
    # δ = 1 through H = δ² / v (v, the gaussian's coordinate variance, 1 to a few ulps) and √
    assert table[0]["bandwidth"] == pytest.approx(1.0, rel=8 * np.finfo(float).eps)


def test_table_text_is_aligned():
    x = np.random.default_rng(53).gamma(2.0, 1.0, 200)
    text = str(select(x, ["scott", "silverman", 0.25], n_folds=3)).splitlines()
    header, rule, rows = text[1], text[2], text[3:6]
    assert header.split("  ")[0].strip() == "method" and set(rule) == {"-", " "}
    # Right-aligned numeric columns end where the rule's dashes end.
    ends = [i + 1 for i, c in enumerate(rule) if c == "-" and (i + 1 == len(rule) or rule[i + 1] == " ")]
    for line in rows:
        for end in ends[1:]:
            assert line[end - 1] != " "
    assert text[0].startswith("bandwidth selection: n = 200, d = 1, kernel 'gaussian'; mean held-out")


def test_errors_name_the_parameter():
    x = np.random.default_rng(54).standard_normal(50)
    with pytest.raises(ValueError, match=r"methods: 'foo' is not a bandwidth rule; the rules are \('scott'"):
        select(x, ["scott", "foo"])
    with pytest.raises(TypeError, match="methods must be a list of bandwidths"):
        select(x, "scott")
    with pytest.raises(ValueError, match="methods must name at least one bandwidth"):
        select(x, [])
    with pytest.raises(ValueError, match="n_folds must be an integer >= 2"):
        select(x, ["scott"], n_folds=1)
    with pytest.raises(ValueError, match=r"n_folds must be at most the number of samples \(50\); got 51"):
        select(x, ["scott"], n_folds=51)
    with pytest.raises(ValueError, match="kernel must be one of"):
        select(x, ["scott"], kernel="foo")
    with pytest.raises(ValueError, match="NaN or infinite"):
        select(np.array([0.0, np.nan, 1.0]), ["scott"])


def test_plot_draws_one_bar_per_scored_method():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.random.default_rng(55).standard_normal(150)
    table = select(x, ["scott", "sj", 0.05], n_folds=3)
    ax = table.plot()
    assert len(ax.patches) == 3
    assert [t.get_text().split()[0] for t in ax.get_yticklabels()] == ["scott", "sj", "0.05"]
    plt.close(ax.figure)
