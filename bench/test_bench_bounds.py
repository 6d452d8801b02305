"""pytest-benchmark suite for bounded data: fit + score_samples with ``bounds`` (the reflection).

    pytest bench/test_bench_bounds.py
    FASTDENSITY_BENCH_QUICK=1 pytest bench/test_bench_bounds.py --benchmark-disable   # CI: once, small n

Each case is timed with and without ``bounds`` on the same data and queries (group "bounds d=…"),
so the ratio is the cost of the reflection: interior queries cost one kernel sum, queries within
the kernel's reach of a face one more per face they are near. Data: a Beta(0.7, 1.5) sample on
[0, 1] per feature (piled against 0, as bounded data often are), Scott's bandwidth.
No other library is compared: neither KDEpy (FFTKDE, TreeKDE, NaiveKDE) nor statsmodels
(KDEUnivariate, KDEMultivariate) has a reflection method built in, and scikit-learn's and scipy's
KDEs take no bounds.

These are measurements, not assertions: no test fails because the machine is slow.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastdensity

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("FASTDENSITY_BENCH_QUICK", "") not in ("", "0")
CASES = [(1000, 1000, 1), (1000, 1000, 2)] if QUICK else [(20000, 20000, 1), (20000, 20000, 2)]
BOUNDS = {1: [(0.0, 1.0)], 2: [(0.0, 1.0), (0.0, None)]}  # two-sided; two-sided × one-sided


def _data(n, m, d, seed=0):
    rng = np.random.default_rng(seed)
    return rng.beta(0.7, 1.5, size=(n, d)), rng.beta(0.7, 1.5, size=(m, d))


@pytest.mark.parametrize("bounded", [False, True], ids=["unbounded", "bounds"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"d{c[2]}-n{c[0]}-m{c[1]}")
def test_fit_score_with_bounds(benchmark, case, bounded):
    """fit + score_samples, gaussian kernel, Scott's bandwidth, with and without ``bounds``."""
    n, m, d = case
    X, Q = _data(n, m, d)
    bounds = BOUNDS[d] if bounded else None

    def fit_score():
        return fastdensity.KernelDensity(bandwidth="scott", bounds=bounds).fit(X).score_samples(Q)

    fit_score()  # warm-up (compiles)
    benchmark.group = f"bounds d={d} n={n}"
    out = benchmark.pedantic(fit_score, rounds=1 if QUICK else 3, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(n=n, m=m, d=d, bounded=bounded)
    assert out.shape == (m,) and np.all(np.isfinite(out))
