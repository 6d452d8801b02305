"""pytest-benchmark suites for KernelDensity's tree engines (``algorithm="tree"``).

    pytest bench/test_bench_kde_tree.py
    FASTDENSITY_BENCH_QUICK=1 pytest bench/test_bench_kde_tree.py --benchmark-disable   # CI smoke

The compact kernels' exact tree sum and the gaussian kernel's bounded sum (rtol = 1e-6), each
beside the exact engine on the same problem (the ratio of one run is what to read). Kernels are
compiled by a warm-up call before the timed part. Measurements, not assertions.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastdensity

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("FASTDENSITY_BENCH_QUICK", "") not in ("", "0")
N = 4000 if QUICK else 200_000  # n = m
ROUNDS = 1 if QUICK else 3


def _data(n, d):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, d)), rng.standard_normal((n, d)), float(n ** (-1.0 / (d + 4)))


@pytest.mark.parametrize("algorithm", ["exact", "tree"])
@pytest.mark.parametrize(("kernel", "rtol"), [("epanechnikov", 0.0), ("gaussian", 1e-6)])
def test_score_samples_tree(benchmark, kernel, rtol, algorithm):
    X, Q, h = _data(N, 2)
    kde = fastdensity.KernelDensity(kernel=kernel, bandwidth=h, algorithm=algorithm, rtol=rtol).fit(X)
    assert kde.effective_algorithm_ == algorithm
    kde.score_samples(Q[:8])  # warm-up: compiles this kernel and d
    benchmark.group = f"tree d=2 n=m={N} {kernel}"
    benchmark.extra_info.update(n=N, m=N, d=2, kernel=kernel, rtol=rtol, algorithm=algorithm)
    out = benchmark.pedantic(kde.score_samples, args=(Q,), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    assert out.shape == (N,)
