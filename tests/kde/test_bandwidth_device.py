"""The new rules on GPU data (CuPy arrays, through the host emulation of CuPy): the CUDA engine copies
the data to the host for "sj", "plugin" and the cross-validated matrices and gets the CPU's matrix."""

from __future__ import annotations

import sys

import cuda_host_emulation
import numpy as np
import pytest

from fastdensity import KernelDensity

pytestmark = [pytest.mark.skipif(not cuda_host_emulation.available(), reason="g++ is not installed")]


@pytest.fixture
def emulated_cupy(monkeypatch):
    cuda_host_emulation.fake_cupy(monkeypatch, sm_count=2, device_arrays=True)
    return sys.modules["cupy"]


@pytest.mark.parametrize("rule,d", [("sj", 1), ("plugin", 2), ("plugin", 1), ("mlcv", 2), ("lscv_diag", 2)])
def test_device_data_get_the_cpu_bandwidth(emulated_cupy, rule, d):
    cp = emulated_cupy
    rng = np.random.default_rng(80)
    X = rng.standard_normal((150, d)) @ (np.eye(d) + 0.3)
    w = rng.uniform(0.5, 2.0, 150)
    cpu = KernelDensity(bandwidth=rule, kernel="epanechnikov").fit(X, sample_weight=w)
    dev = KernelDensity(bandwidth=rule, kernel="epanechnikov").fit(cp.asarray(X), sample_weight=cp.asarray(w))
    assert isinstance(dev.training_data_, cp.ndarray)
    np.testing.assert_array_equal(dev.bandwidth_matrix_, cpu.bandwidth_matrix_)


def test_device_sj_on_two_features_refuses(emulated_cupy):
    cp = emulated_cupy
    with pytest.raises(ValueError, match='bandwidth="sj" is for 1-D data; X has 2 features'):
        KernelDensity(bandwidth="sj").fit(cp.asarray(np.random.default_rng(81).standard_normal((30, 2))))
