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
