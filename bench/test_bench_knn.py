"""pytest-benchmark suites for KNNDensity (exact kNN density).

    pytest bench/test_bench_knn.py                                   # time (a minute or two)
    FASTDENSITY_BENCH_QUICK=1 pytest bench --benchmark-disable       # CI: every body once

The three target cells of the kNN work (k = 10, n training = m query points, standard normal
data): fit + score_samples at n = 100,000, d = 2 (the k-d tree), n = 50,000, d = 16 (the
float32-screened brute force) and n = 20,000, d = 64 (the BLAS screen), float64 and float32;
plus leave-one-out scoring of the training set. ``extra_info`` records n, m, d, dtype, the
engine and pairs/s = n × m / median time. ``bench/compare_knn.py`` times the same cells against
scipy, scikit-learn and faiss in one process.

These are measurements, not assertions: no test fails because the machine is slow.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastdensity.knn import KNNDensity

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("FASTDENSITY_BENCH_QUICK", "") not in ("", "0")

K = 10
# (n = m, d). Quick mode keeps every engine and code path (several panels, gemm blocks and
# query blocks) and shrinks n.
if QUICK:
    CELLS = [(3_000, 2), (2_000, 16), (1_500, 64)]
    ROUNDS = 1
else:
    CELLS = [(100_000, 2), (50_000, 16), (20_000, 64)]
    ROUNDS = 3


def _data(n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.standard_normal((n, d)).astype(dtype)


def _info(benchmark, n, m, d, dtype, engine):
    benchmark.extra_info.update(n=n, m=m, d=d, k=K, dtype=np.dtype(dtype).name, engine=engine)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("n, d", CELLS, ids=[f"n{n}-d{d}" for n, d in CELLS])
def test_fit_score(benchmark, n, d, dtype):
    X, Q = _data(n, d, dtype)
    KNNDensity(K).fit(X).score_samples(Q[:100])  # compile / load the kernels

    def run():
        return KNNDensity(K).fit(X).score_samples(Q)

    out = benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    assert out.shape == (n,) and np.all(np.isfinite(out))
    engine = KNNDensity(K).fit(X).effective_algorithm_
    _info(benchmark, n, n, d, dtype, engine)
    if benchmark.stats is not None:
        benchmark.extra_info["pairs_per_s"] = n * n / benchmark.stats.stats.median


@pytest.mark.parametrize("n, d", CELLS[:2], ids=[f"n{n}-d{d}" for n, d in CELLS[:2]])
def test_leave_one_out(benchmark, n, d):
    X, _ = _data(n, d, np.float64)
    est = KNNDensity(K).fit(X)
    KNNDensity(K).fit(X[:500]).score_samples()  # compile / load the kernels

    out = benchmark.pedantic(est.score_samples, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    assert out.shape == (n,) and np.all(np.isfinite(out))
    _info(benchmark, n, n, d, np.float64, est.effective_algorithm_)
