"""``algorithm="auto"`` and the fft grid (``_algorithm.fft_cost``): "fft" is chosen only where a
relative tolerance was asked for and the grid answers the bulk within it; the choice shows in
``effective_algorithm_``, the scores meet the tolerance, and "auto" stays exact elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastdensity import KernelDensity
from fastdensity.kde import _algorithm, _fft_score
from fastdensity.kde._algorithm import fft_cost, predicted_relative_bound
from fastdensity.kde._algorithm_route import runs_fft
from fastdensity.kde._engine import engine_for
from fastdensity.kde._fft_score import plan_scoring_grid, scoring_grid

EPS = np.finfo(np.float64).eps


def _exact(est, Q):
    ref = KernelDensity(kernel=est.kernel, bandwidth=est.bandwidth, algorithm="exact")
    return ref.fit(est.training_data_, sample_weight=est.sample_weight_).score_samples(Q)


def test_auto_picks_fft_in_1d_with_a_tolerance_and_meets_it():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 1))
    w = rng.uniform(0.5, 2.0, len(X))
    rtol = 1e-3
    est = KernelDensity(bandwidth="scott", rtol=rtol).fit(X, sample_weight=w)
    assert est.effective_algorithm_ == "fft"
    assert runs_fft(est)
    Q = np.concatenate([rng.standard_normal((500, 1)) * 1.5, [[40.0]]])  # the last one off the grid
    out = est.score_samples(Q)
    p, p_hat = np.exp(_exact(est, Q)), np.exp(out)
    # the guarantee plus the exact engine's rounding of p (a few ulps of each density)
    assert np.all(np.abs(p_hat - p) <= rtol * p + 8 * EPS * p)
    assert "fft_grid" in est._cache()


def test_auto_keeps_the_exact_engine_without_a_relative_tolerance():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20000, 1))
    Q = rng.standard_normal((50, 1))
    exact = KernelDensity(bandwidth="scott", algorithm="exact").fit(X)
    for params in ({}, {"atol": 1e-6}):
        est = KernelDensity(bandwidth="scott", **params).fit(X)
        assert est.effective_algorithm_ != "fft"
        assert not runs_fft(est)
    est = KernelDensity(bandwidth="scott").fit(X)
    assert est.effective_algorithm_ == "exact"
    np.testing.assert_array_equal(est.score_samples(Q), exact.score_samples(Q))


@pytest.mark.parametrize("params", [
    {"kernel": "epanechnikov"},  # a kink: its bound is O(δ), not considered
    {"adaptive": True},
    {"metric": "manhattan"},
    {"algorithm": "kd_tree"},  # scikit-learn's names choose between exact and tree only
])
def test_auto_does_not_consider_fft_where_it_does_not_apply(params):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((5000, 1))
    est = KernelDensity(bandwidth="scott", rtol=1e-2, **params).fit(X)
    assert est.effective_algorithm_ in ("exact", "tree")
    assert fft_cost(est, engine_for(X), est.metric) is None or est.algorithm != "auto"


def test_auto_does_not_pick_fft_in_4d():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3000, 4))
    est = KernelDensity(bandwidth="scott", rtol=1e-2).fit(X)
    assert est.effective_algorithm_ != "fft"


def test_auto_skips_a_grid_too_coarse_for_the_tolerance(monkeypatch):
    """3-D with a grid budget of 2^18 points: the spacing is a good part of a bandwidth, the
    predicted bound far above rtol / 2, so "auto" does not take the grid (it would send nearly
    every query to the exact engine)."""
    monkeypatch.setattr(_fft_score, "SCORING_BUDGET", {1: 1 << 18, 2: 1 << 18, 3: 1 << 18})
    rng = np.random.default_rng(4)
    X = rng.standard_normal((20000, 3))
    est = KernelDensity(bandwidth="scott", rtol=1e-3).fit(X)
    assert fft_cost(est, engine_for(X), "euclidean") is None
    assert est.effective_algorithm_ != "fft"


def test_auto_prefers_the_cheaper_engine_by_the_cost_model(monkeypatch):
    """The same model: with the grid's build made expensive in the cost model, "auto" leaves it."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((20000, 1))
    assert KernelDensity(bandwidth="scott", rtol=1e-3).fit(X).effective_algorithm_ == "fft"
    monkeypatch.setattr(_algorithm, "FFT_COST_GRID", 1e6)
    assert KernelDensity(bandwidth="scott", rtol=1e-3).fit(X).effective_algorithm_ != "fft"


def test_fft_cost_counts_the_build_over_n_queries():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((8000, 1))
    est = KernelDensity(bandwidth="scott", rtol=1e-3).fit(X)
    N = math.prod(plan_scoring_grid(est)["padded"])
    expected = (_algorithm.FFT_COST_GRID * N * math.log2(N) + _algorithm.FFT_COST_BIN * len(X)) / len(X) \
        + _algorithm.FFT_COST_CORNER * 2
    assert fft_cost(est, engine_for(X), "euclidean") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("kernel", "d", "rtol"), [("gaussian", 1, 1e-4), ("biweight", 2, 1e-2),
                                                    ("triweight", 2, 1e-2)])
def test_the_predicted_bound_matches_the_grid_in_the_bulk(monkeypatch, kernel, d, rtol):
    """The prediction against the built grid: the median of B / f̃ over the nodes of the bulk (where
    f̃ ≥ 10 % of its peak) lies within a factor 3 of it (the prediction is for a density that is
    flat on the bandwidth's scale; the data's own curvature moves the ratio by a factor O(1))."""
    monkeypatch.setattr(_fft_score, "SCORING_BUDGET", {1: 1 << 16, 2: 1 << 18, 3: 1 << 18})
    rng = np.random.default_rng(7)
    X = rng.standard_normal((5000, d))
    est = KernelDensity(bandwidth="scott", kernel=kernel, rtol=rtol, algorithm="fft").fit(X)
    plan = plan_scoring_grid(est)
    predicted = predicted_relative_bound(kernel, d, plan["D"], plan["curvature"])
    grid, fields = scoring_grid(est, np)
    density, bound = fields
    bulk = density >= 0.1 * density.max()
    ratio = float(np.median(bound[bulk] / density[bulk]))
    assert predicted / 3 <= ratio <= 3 * predicted


def test_set_params_away_from_auto_stops_the_grid_without_a_refit():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((20000, 1))
    Q = rng.standard_normal((20, 1))
    est = KernelDensity(bandwidth="scott", rtol=1e-3).fit(X)
    assert est.effective_algorithm_ == "fft"
    est.set_params(algorithm="exact")
    assert not runs_fft(est)
    np.testing.assert_array_equal(est.score_samples(Q), _exact(est, Q))


def test_a_saved_auto_fft_model_scores_the_same_after_loading(tmp_path):
    from fastdensity.io import load, save

    rng = np.random.default_rng(9)
    X = rng.standard_normal((20000, 1))
    Q = rng.standard_normal((100, 1))
    est = KernelDensity(bandwidth="scott", rtol=1e-3).fit(X)
    assert est.effective_algorithm_ == "fft"
    save(est, tmp_path / "auto.npz")
    loaded = load(tmp_path / "auto.npz")
    assert loaded.effective_algorithm_ == "fft"
    np.testing.assert_array_equal(loaded.score_samples(Q), est.score_samples(Q))
