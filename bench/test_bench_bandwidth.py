"""pytest-benchmark suite for the bandwidth rules' fit time (``KernelDensity(bandwidth=rule).fit``).

    pytest bench/test_bench_bandwidth.py
    FASTDENSITY_BENCH_QUICK=1 pytest bench/test_bench_bandwidth.py --benchmark-disable   # CI

The rules' costs differ in kind: "scott"/"silverman" are a covariance (O(n d²)), "isj" a binned DCT,
"sj" R's binned pair counts (O(n + nb²)), "cv" one pass over the n² pairs for 41 factors, "plugin"
exact functionals over the n²/2 pairs (O(n² C(d+3, 4))), "lscv"/"mlcv" O(n²) per BFGS step.
``extra_info`` holds n, d and the rule. Measurements, not assertions.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastdensity

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("FASTDENSITY_BENCH_QUICK", "") not in ("", "0")

# (rule, n, d)
if QUICK:
    CASES = [(r, 500, 1) for r in ("scott", "isj", "sj", "plugin", "cv", "mlcv")] + [("plugin", 300, 2), ("lscv", 300, 2)]
else:
    CASES = ([(r, 5000, 1) for r in ("scott", "isj", "sj", "cv")] + [("plugin", 2000, 1), ("mlcv", 1000, 1)]
             + [("plugin", 2000, 2), ("lscv", 1000, 2), ("mlcv", 1000, 2), ("cv", 5000, 2)])


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-d{c[2]}-n{c[1]}")
def test_rule_fit_time(benchmark, case):
    rule, n, d = case
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-1.5, 0.5, (n // 2, d)), rng.normal(1.0, 1.0, (n - n // 2, d))])
    kde = fastdensity.KernelDensity(bandwidth=rule)
    kde.fit(X)  # warm-up: compiles the Numba kernels "cv" needs
    benchmark.group = f"bandwidth rule fit d={d}"
    benchmark.extra_info.update(rule=rule, n=n, d=d)
    out = benchmark.pedantic(kde.fit, args=(X,), rounds=1 if QUICK else 3, iterations=1, warmup_rounds=0)
    assert np.all(np.isfinite(out.bandwidth_matrix_))
