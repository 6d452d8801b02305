"""pytest-benchmark suites for the exact Gaussian KDE.

    pytest bench                                  # time (a few minutes on 2 cores)
    pytest bench --benchmark-json out.json        # keep the numbers (extra_info holds pairs/s)
    FASTDENSITY_BENCH_QUICK=1 pytest bench --benchmark-disable   # CI: every body once, small n

Each benchmark compiles its kernels (a warm-up call on the same estimator) before the timed
part. ``extra_info`` holds the problem size and ``pairs_per_s`` (n × m / median time); with
``--benchmark-disable`` there is no timing and ``pairs_per_s`` is left out.

These are measurements, not assertions: no test fails because the machine is slow.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastdensity

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("FASTDENSITY_BENCH_QUICK", "") not in ("", "0")

# (n, m, d): n training points, m queries. Quick mode keeps the shapes (so that the same code
# paths and specialisations run) and shrinks the sizes.
if QUICK:
    SCORE_CASES = [(1000, 1000, 1), (1000, 1000, 2), (1000, 1000, 8), (2000, 2000, 2)]
    ROUNDS = {None: 1}
else:
    SCORE_CASES = [(20000, 20000, 1), (20000, 20000, 2), (20000, 20000, 8), (100000, 100000, 2)]
    ROUNDS = {100000: 3, None: 5}
SMALL = (1000, 1000, 2)  # fit + score of a small KDE (the same in quick mode: it is fast)
DTYPES = [np.float64, np.float32]


def _data(n, m, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    Q = rng.standard_normal((m, d)).astype(dtype)
    h = float(n ** (-1.0 / (d + 4)))  # Scott's factor for unit-variance data
    return X, Q, h


def _record(benchmark, n, m, d, dtype):
    benchmark.extra_info.update(n=n, m=m, d=d, dtype=np.dtype(dtype).name, pairs=n * m)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None with --benchmark-disable
        median = stats.stats.median
        benchmark.extra_info["pairs_per_s"] = n * m / median if median > 0 else float("nan")


def _case_id(case):
    n, m, d = case
    return f"d{d}-n{n}-m{m}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("case", SCORE_CASES, ids=_case_id)
def test_score_samples_gaussian_exact(benchmark, case, dtype):
    """``KernelDensity(kernel="gaussian").score_samples`` on m queries against n points."""
    n, m, d = case
    X, Q, h = _data(n, m, d, dtype)
    kde = fastdensity.KernelDensity(bandwidth=h, kernel="gaussian", algorithm="exact").fit(X)
    kde.score_samples(Q[:8])  # warm-up: compiles (or loads from cache) this dtype and d
    benchmark.group = f"score_samples d={d} n={n}"
    out = benchmark.pedantic(kde.score_samples, args=(Q,), rounds=ROUNDS.get(n, ROUNDS[None]),
                             iterations=1, warmup_rounds=0)
    _record(benchmark, n, m, d, dtype)
    assert out.shape == (m,)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
def test_fit_score_small(benchmark, dtype):
    """fit + score_samples of a small KDE: the per-call overhead (validation, bandwidth, setup)."""
    n, m, d = SMALL
    X, Q, h = _data(n, m, d, dtype)

    def fit_score():
        return fastdensity.KernelDensity(bandwidth=h, kernel="gaussian").fit(X).score_samples(Q)

    fit_score()  # warm-up (compiles)
    benchmark.group = "fit+score small"
    out = benchmark.pedantic(fit_score, rounds=1 if QUICK else 20, iterations=1,
                             warmup_rounds=0 if QUICK else 2)
    _record(benchmark, n, m, d, dtype)
    assert out.shape == (m,)
