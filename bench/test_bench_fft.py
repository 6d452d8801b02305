"""pytest-benchmark suites for the binned FFT grid: ``evaluate_grid`` and ``algorithm="fft"``.

    pytest bench/test_bench_fft.py                                  # time
    FASTDENSITY_BENCH_QUICK=1 pytest bench --benchmark-disable      # CI: every body once, small n

Each benchmark compiles the binning (a warm-up call on the same estimator) before the timed part;
the cached data range is dropped before each timed ``evaluate_grid`` call and the cached scoring
grid before each timed fft ``score_samples``, so every call does the whole work. ``extra_info``
holds the sizes and ``points_per_s`` (n / median time). Measurements, not assertions.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastdensity

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("FASTDENSITY_BENCH_QUICK", "") not in ("", "0")

# (n, d, grid points per axis); quick mode keeps the shapes and shrinks n.
if QUICK:
    GRID_CASES = [(20_000, 1, 1024), (20_000, 2, 256)]
    SCORE_CASES = [(5_000, 5_000, 1), (5_000, 5_000, 2)]
    ROUNDS = 1
else:
    GRID_CASES = [(1_000_000, 1, 1024), (1_000_000, 2, 256), (1_000_000, 3, 64)]
    SCORE_CASES = [(100_000, 100_000, 1), (100_000, 100_000, 2)]
    ROUNDS = 5


def _record(benchmark, **info):
    benchmark.extra_info.update(info)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None with --benchmark-disable
        median = stats.stats.median
        benchmark.extra_info["points_per_s"] = info["n"] / median if median > 0 else float("nan")


@pytest.mark.parametrize("case", GRID_CASES, ids=lambda c: f"d{c[1]}-n{c[0]}-grid{c[2]}")
def test_evaluate_grid_gaussian(benchmark, case):
    n, d, points = case
    X = np.random.default_rng(0).standard_normal((n, d))
    kde = fastdensity.KernelDensity(bandwidth=n ** (-1.0 / (d + 4))).fit(X)
    kde.evaluate_grid(points)  # warm-up: compiles the binning

    def run():
        kde._cache().pop("extremes", None)
        return kde.evaluate_grid(points)

    benchmark.group = f"evaluate_grid d={d}"
    coords, log_p = benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _record(benchmark, n=n, d=d, grid=points)
    # −inf marks the far corners below the FFT's rounding floor (below_floor="-inf")
    assert log_p.shape == (points,) * d and not np.any(np.isnan(log_p)) and np.isfinite(log_p).mean() > 0.4


@pytest.mark.parametrize("case", SCORE_CASES, ids=lambda c: f"d{c[2]}-n{c[0]}-m{c[1]}")
def test_score_samples_fft_gaussian(benchmark, case):
    n, m, d = case
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, d))
    Q = rng.standard_normal((m, d))
    kde = fastdensity.KernelDensity(bandwidth=n ** (-1.0 / (d + 4)), algorithm="fft").fit(X)
    kde.score_samples(Q[:8])  # warm-up: compiles the binning

    def run():
        kde._cache().pop("fft_grid", None)
        return kde.score_samples(Q)

    benchmark.group = f"score_samples fft d={d}"
    out = benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _record(benchmark, n=n, m=m, d=d)
    assert out.shape == (m,) and np.all(np.isfinite(out))
