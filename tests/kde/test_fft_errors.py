"""Bad input to ``evaluate_grid`` and ``algorithm="fft"``: a ValueError/TypeError naming the limit
and what was given, raised before any work starts."""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity import KernelDensity
from fastdensity.kde import _fft_binning


@pytest.fixture
def X2():
    return np.random.default_rng(0).normal(size=(50, 2))


@pytest.fixture
def no_binning(monkeypatch):
    """Any binning call fails the test: the errors come before the work."""
    def fail(*args, **kwargs):
        raise AssertionError("binning started before the input was checked")

    monkeypatch.setattr("fastdensity.kde._fft_grid.bin_linear_cpu", fail)
    monkeypatch.setattr("fastdensity.kde._fft_grid.bin_linear_xp", fail)


def test_more_than_three_features(no_binning):
    X = np.random.default_rng(1).normal(size=(30, 4))
    with pytest.raises(ValueError, match="evaluate_grid works for data with at most 3 features; the data have 4"):
        KernelDensity().fit(X).evaluate_grid()
    with pytest.raises(ValueError, match="algorithm='fft' works for data with at most 3 features; the data have 4"):
        KernelDensity(algorithm="fft").fit(X)


def test_unknown_algorithm(X2):
    with pytest.raises(ValueError, match=r"algorithm.*'auto', 'exact', 'tree', 'kd_tree', 'ball_tree', 'fft'.*'fast'"):
        KernelDensity(algorithm="fast").fit(X2)


def test_grid_too_large_for_memory(X2, no_binning):
    kde = KernelDensity(bandwidth=0.5).fit(X2)
    with pytest.raises(ValueError, match=r"padded FFT of .* points .*GiB.*the limit is 67,108,864 points"):
        kde.evaluate_grid(10_000)


def test_non_euclidean_metric_and_adaptive(X2, no_binning):
    with pytest.raises(ValueError, match="evaluate_grid needs the euclidean metric; got metric='manhattan'"):
        KernelDensity(metric="manhattan").fit(X2).evaluate_grid()
    with pytest.raises(ValueError, match="algorithm='fft' needs the euclidean metric; got metric='chebyshev'"):
        KernelDensity(metric="chebyshev", algorithm="fft").fit(X2)
    with pytest.raises(ValueError, match="algorithm='fft' needs a fixed bandwidth; got adaptive=True"):
        KernelDensity(adaptive=True, algorithm="fft").fit(X2)
    with pytest.raises(ValueError, match="evaluate_grid needs a fixed bandwidth; got adaptive=True"):
        KernelDensity(adaptive=True).fit(X2).evaluate_grid()


@pytest.mark.parametrize("grid_points,exc,match", [
    (1, ValueError, r"grid_points must be at least 2 per feature; got 1"),
    ((10, 1), ValueError, r"at least 2 per feature; got \(10, 1\)"),
    ((10, 10, 10), ValueError, r"a sequence of 2 ints \(one per feature\); got \(10, 10, 10\)"),
    ((10, 2.5), ValueError, r"a sequence of 2 ints \(one per feature\); got \(10, 2.5\)"),
    (True, TypeError, r"grid_points must be an int or a sequence of 2 ints; got True"),
    (2.0, TypeError, r"grid_points must be an int or a sequence of 2 ints; got 2.0"),
])
def test_bad_grid_points(X2, no_binning, grid_points, exc, match):
    with pytest.raises(exc, match=match):
        KernelDensity().fit(X2).evaluate_grid(grid_points)


@pytest.mark.parametrize("bounds,match", [
    ([(0, 1)], r"2 \(low, high\) pairs, shape \(2, 2\); got shape \(1, 2\)"),
    ([(0, 1), (2, 1)], r"low < high in every feature; got \[\[0.0, 1.0\], \[2.0, 1.0\]\]"),
    ([(0, np.inf), (0, 1)], r"finite with low < high"),
])
def test_bad_bounds(X2, no_binning, bounds, match):
    with pytest.raises(ValueError, match=match):
        KernelDensity().fit(X2).evaluate_grid(bounds=bounds)
    with pytest.raises(TypeError, match="bounds must be None or 2 \\(low, high\\) pairs; got 'wide'"):
        KernelDensity().fit(X2).evaluate_grid(bounds="wide")


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        KernelDensity().evaluate_grid()


def test_binning_block_count_is_bounded():
    # Memory of the private grids: at most 32 MiB whatever the sizes.
    assert _fft_binning.block_count(10**9, 1 << 24) == 1
    assert _fft_binning.block_count(10**6, 1024) == 8
    assert _fft_binning.block_count(10, 1024) == 1
