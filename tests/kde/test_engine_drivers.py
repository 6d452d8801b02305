"""The engine's serial (small problems) and parallel drivers give identical results."""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity.kde import _kde_cpu
from fastdensity.kde._kde_cpu import SERIAL_BELOW_PAIRS, kde_logsum


@pytest.mark.parametrize("d", [2, 20])  # the unrolled and the buffered paths
@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_serial_and_parallel_drivers_agree_bitwise(d, kernel, monkeypatch):
    rng = np.random.default_rng(5)
    train = rng.standard_normal((1500, d))
    queries = np.vstack([rng.standard_normal((700, d)), 50.0 + rng.standard_normal((3, d))])
    log_w = rng.normal(size=1500)
    assert queries.shape[0] * train.shape[0] >= SERIAL_BELOW_PAIRS  # the parallel driver runs
    parallel = kde_logsum(queries, train, log_w, kernel)
    monkeypatch.setattr(_kde_cpu, "SERIAL_BELOW_PAIRS", 1 << 62)  # force the serial driver
    serial = kde_logsum(queries, train, log_w, kernel)
    np.testing.assert_array_equal(serial, parallel)
    if kernel == "gaussian":
        assert np.all(np.isfinite(parallel))  # far queries take the log-space path, still finite
    else:
        assert np.all(np.isneginf(parallel[-3:]))


@pytest.mark.parametrize("d", [3, 20])  # the unrolled and the buffered paths
@pytest.mark.parametrize("m", [1, 5, 64, 130])
def test_query_blocks_do_not_change_the_sums(m, d, monkeypatch):
    # The drivers sum the training tiles for a block of queries at a time; every query keeps its
    # own tile order, so any block size gives the same bits as one query per block. Three tiles
    # and a partial one, and far queries that take the log-space path.
    rng = np.random.default_rng(m)
    train = rng.standard_normal((3 * _kde_cpu.TILE + 17, d))
    queries = rng.standard_normal((m, d))
    queries[::4] += 60.0 if d == 3 else 20.0
    log_w = rng.normal(size=train.shape[0])
    real_block = _kde_cpu.query_block
    assert real_block(1) == 1 and real_block(10**6) == _kde_cpu.QUERY_BLOCK
    monkeypatch.setattr(_kde_cpu, "SERIAL_BELOW_PAIRS", 0)  # the parallel driver, several blocks
    results = []
    for block in (1, 7, 64):
        monkeypatch.setattr(_kde_cpu, "query_block", lambda m, block=block: block)
        results.append(kde_logsum(queries, train, log_w, "gaussian"))
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])
    assert np.all(np.isfinite(results[0]))


@pytest.mark.parametrize("m", [3, 40, 200])
def test_metric_engine_blocks_do_not_change_the_sums(m, monkeypatch):
    # The metric engine's blocks (up to QUERY_BLOCK queries, fewer for few queries) keep every
    # query's tile order and prune decisions: any block size gives the same bits.
    from fastdensity.kde import _kde_metric_cpu

    rng = np.random.default_rng(m)
    train_t = np.ascontiguousarray(rng.standard_normal((3, 3 * _kde_metric_cpu.TILE + 5)))
    queries = rng.standard_normal((m, 3))
    queries[::5] += 40.0  # the log-space path
    log_w = rng.normal(size=train_t.shape[1])
    monkeypatch.setattr(_kde_metric_cpu, "SERIAL_BELOW_PAIRS", 0)
    results = []
    for block in (1, 7, 32):
        monkeypatch.setattr(_kde_metric_cpu, "QUERY_BLOCK", block)
        for kernel in ("gaussian", "epanechnikov"):  # the second prunes tiles
            results.append((kernel, _kde_metric_cpu.kde_logsum_metric(queries, train_t, log_w, kernel,
                                                                       "manhattan", 0.7)))
    for kernel in ("gaussian", "epanechnikov"):
        same = [r for k, r in results if k == kernel]
        for other in same[1:]:
            np.testing.assert_array_equal(other, same[0])
