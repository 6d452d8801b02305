"""The data-driven rules ("isj", "sj") on rounded and tied data: a usable bandwidth, never below the
data's resolution, close to the unrounded data's; the documented fallback where no root is left."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fastdensity import KernelDensity
from fastdensity.datasets import load_old_faithful
from fastdensity.kde._bandwidth_isj import isj_bandwidth
from fastdensity.kde._bandwidth_rounded import tie_resolution
from fastdensity.kde._bandwidth_sj import sj_bandwidth

RULES = {"isj": isj_bandwidth, "sj": sj_bandwidth}


@pytest.mark.parametrize("rule", ["isj", "sj"])
def test_old_faithful_eruptions_get_a_bandwidth_above_their_resolution(rule):
    # Recorded to the second (1/60 min, written to 3 decimals): 126 distinct values of 272.
    eruptions = load_old_faithful()[:, 0]
    resolution = tie_resolution(eruptions)
    assert resolution == pytest.approx(1 / 60, abs=0.001)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the resolution-aware root, not the fallback
        h = RULES[rule](eruptions)
        kde = KernelDensity(bandwidth=rule).fit(eruptions[:, None])
    assert h >= resolution
    # Both plug-in rules agree on this bimodal sample (0.125 and 0.140), well below the
    # normal-reference 0.39 that the two modes inflate.
    assert 0.1 < h < 0.2
    assert kde.bandwidth_ == pytest.approx(h, rel=1e-15)


@pytest.mark.parametrize("rule", ["isj", "sj"])
@pytest.mark.parametrize(("n", "step"), [(5000, 0.05), (5000, 0.1), (50_000, 0.1)])
def test_rounded_normal_data_keep_the_unrounded_bandwidth(rule, n, step):
    x = np.random.default_rng(40 + int(100 * step)).standard_normal(n)
    rounded = np.round(x / step) * step
    select = (lambda v: sj_bandwidth(v, tol=1e-12)) if rule == "sj" else isj_bandwidth
    h0 = select(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = select(rounded)
    # Rounding to a step δ spreads each value over U(−δ/2, δ/2): a KDE of the rounded data with
    # bandwidth h is to first order that of the exact data with h² + δ²/12, and the roughness
    # functionals the rules estimate shift by the same relative amount δ²/(12 g²) at pilots g > h;
    # h ∝ ψ^(−1/5) damps that. So |h / h0 − 1| ≤ δ² / (12 h0²).
    assert abs(h / h0 - 1) <= step**2 / (12 * h0**2)


@pytest.mark.parametrize("rule", ["isj", "sj"])
def test_discrete_data_fall_back_with_a_warning(rule):
    x = np.tile([0.0, 1.0, 2.0], 1000)  # three values: no density below the step δ = 1
    with pytest.warns(UserWarning, match=rf'the "{rule}" bandwidth has no solution at or above the data\'s '
                                         r"resolution \(δ = 1,.*fallback max\(Silverman's rule, δ\) = 1"):
        h = RULES[rule](x)
    assert h == 1.0  # Silverman's rule (≈ 0.17) is below δ


@pytest.mark.parametrize("rule", ["isj", "sj"])
def test_a_step_coarser_than_the_bandwidth_falls_back_to_silverman_or_the_step(rule):
    x = np.random.default_rng(41).standard_normal(50_000)
    step = 0.3  # the unrounded optimum is ≈ 0.12
    rounded = np.round(x / step) * step
    with pytest.warns(UserWarning, match="fallback"):
        h = RULES[rule](rounded)
    assert h == pytest.approx(step, rel=1e-15)


def test_data_without_ties_keep_their_errors():
    # Not rounded: an outlier that stretches ISJ's grid is refused as before.
    x = np.concatenate([np.random.default_rng(42).standard_normal(1000), [1e6]])
    with pytest.raises(ValueError, match="below the binning resolution"):
        isj_bandwidth(x)
    with pytest.raises(ValueError, match="no root in the searched range"):
        isj_bandwidth(np.array([0.0, 1.0, 5.0]))


def test_tie_resolution():
    assert tie_resolution(np.array([0.0, 0.5, 1.0, 1.0, 2.0])) == 0.5
    assert tie_resolution(np.array([0.0, 0.5, 1.0])) is None  # no ties
    assert tie_resolution(np.array([3.0, 3.0])) is None  # one value


def test_weighted_rounded_data():
    x = np.random.default_rng(43).standard_normal(5000)
    rounded = np.round(x / 0.1) * 0.1
    w = np.random.default_rng(44).uniform(0.5, 1.5, x.size)
    for rule, select in RULES.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            h = select(rounded, w)
        assert h >= 0.1, rule
