"""The FFT grid's GPU path (``bincount`` binning, ``cupyx.scipy.fft``, device-side interpolation) on
the CuPy stand-in of tests/cuda_host_emulation.py, whose arrays are NumPy arrays marked as device
arrays and whose ``cupyx.scipy.fft`` is scipy.fft here: it runs the estimator's GPU dispatch,
the namespace-generic code and the result conversion, compared with the host path. It cannot show
CuPy's own FFT rounding or speed (a real GPU does)."""

from __future__ import annotations

import sys
import types

import cuda_host_emulation
import numpy as np
import pytest
import scipy.fft

from fastdensity import KernelDensity
from fastdensity.kde._fft_bound import NEGLIGIBLE, profile
from fastdensity.kde._fft_evaluate import plan_grid
from fastdensity.kde._fft_grid import binned_weights, fft_rounding, offset_radii

EPS = np.finfo(np.float64).eps


@pytest.fixture
def emulated_cupy(monkeypatch):
    cuda_host_emulation.fake_cupy(monkeypatch, sm_count=2, device_arrays=True)
    fft = types.ModuleType("cupyx.scipy.fft")
    for name in ("rfftn", "irfftn"):
        # cupyx.scipy.fft takes no ``workers``: the stand-in refuses it too.
        def call(*args, _f=getattr(scipy.fft, name), **kwargs):
            assert "workers" not in kwargs
            return cuda_host_emulation._as_device(_f(*args, **kwargs))

        setattr(fft, name, call)
    monkeypatch.setitem(sys.modules, "cupyx.scipy.fft", fft)
    from fastdensity.kde import _fft_score

    monkeypatch.setattr(_fft_score, "SCORING_BUDGET", {1: 1 << 18, 2: 1 << 20, 3: 1 << 20})  # quick grids
    return sys.modules["cupy"]


@pytest.mark.parametrize("kernel,bandwidth", [("gaussian", [0.3, 0.5]), ("epanechnikov", 0.4)])
def test_emulated_evaluate_grid_matches_the_host(emulated_cupy, kernel, bandwidth):
    cp = emulated_cupy
    rng = np.random.default_rng(21)
    X = rng.standard_normal((3000, 2))
    w = rng.uniform(0.5, 2.0, 3000)
    host = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=w)
    dev = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(cp.asarray(X), sample_weight=cp.asarray(w))
    (hx, hy), h_log = host.evaluate_grid((60, 50))
    (dx, dy), d_log = dev.evaluate_grid((60, 50))
    assert isinstance(d_log, cp.ndarray) and isinstance(dx, cp.ndarray)
    np.testing.assert_array_equal(dx.get(), hx)
    finite = np.isfinite(d_log.get())
    scale = np.exp(np.max(h_log))
    # The device convolves by FFT, whose rounding floor F sends the far tails to -inf; the host
    # convolves a separable window directly, without that floor (an epanechnikov window is not
    # separable in 2-D: FFT on both). So the host has every node the device has, and besides
    # only tails that the FFT could not tell from 0: within F of the device's values ≤ F.
    plan = plan_grid(host, (60, 50), None)
    counts = binned_weights(host, plan["ext_lo"], plan["step"], plan["ext_shape"])
    window = profile(kernel, offset_radii(plan["A"], plan["step"], plan["half"]))
    floor = (fft_rounding(plan["padded"], np, counts, window) + NEGLIGIBLE) * np.exp(plan["log_cn"])
    assert np.all(np.isfinite(h_log[finite]))
    assert np.all(np.exp(h_log[~finite]) <= 2 * floor)
    # The same binned weights summed in another order (bincount vs the Numba blocks, and FFT vs
    # direct): within the FFT's floor of each node's density, relative to the largest one.
    np.testing.assert_allclose(np.exp(d_log.get()[finite]), np.exp(h_log[finite]), rtol=0, atol=1e-12 * scale)


def test_emulated_fft_scoring_matches_the_host(emulated_cupy, monkeypatch):
    cp = emulated_cupy
    from fastdensity.kde._engine_cuda import CUDA_ENGINE

    def no_exact(*args):  # every query here is answered from the grid
        raise AssertionError("the exact engine was asked")

    rng = np.random.default_rng(22)
    X = rng.standard_normal((3000, 2))
    Q = rng.standard_normal((400, 2)) * 0.8
    host = KernelDensity(bandwidth=0.3, algorithm="fft", rtol=1e-2).fit(X)
    dev = KernelDensity(bandwidth=0.3, algorithm="fft", rtol=1e-2).fit(cp.asarray(X))
    ref = host.score_samples(Q)
    monkeypatch.setattr(CUDA_ENGINE, "log_density", no_exact)
    out = dev.score_samples(cp.asarray(Q))
    assert isinstance(out, cp.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out.get(), ref, rtol=0, atol=1e-10)
    out32 = dev.score_samples(cp.asarray(Q.astype(np.float32)))
    assert out32.dtype == np.float32
