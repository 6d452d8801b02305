"""kernels/kde.cu and its launcher executed on the CPU: a check of the CUDA path that needs no GPU.

The launcher ``_kde_cuda.kde_logsum`` runs unchanged, through the real loader
``fastdensity._backend._cuda``, against the stand-in ``cupy`` of the shared host emulation
(tests/cuda_host_emulation.py): its arrays are NumPy arrays and its ``RawModule`` compiles the very
source text the loader produces (``#line`` directive included) with g++ and a small shim: every
CUDA thread of a block is an OS thread, ``__shared__`` variables are shared by them,
``__syncthreads`` is a barrier, blocks run one after the other. That executes the kernels'
indexing, tiling, tails, splits, barriers, the merge of the partials and the slow path, and
compares the result with the CPU engine; the estimator tests run KernelDensity's GPU path on the
stand-in's device arrays. What it cannot show: the device's ex2.approx / flush-to-zero rounding,
timing, and races that the scheduling of real warps would expose (compute-sanitizer on a GPU does
that).
"""

from __future__ import annotations

import sys
import types

import cuda_host_emulation
import numpy as np
import pytest

from random_inputs import input_rng
from fastdensity.kde import _kde_cuda
from fastdensity.kde._kde_cpu import kde_logsum as cpu_logsum

pytestmark = [pytest.mark.skipif(not cuda_host_emulation.available(), reason="g++ is not installed")]


@pytest.fixture
def emulated_cupy(monkeypatch):
    """The emulation's ``cupy`` (device arrays, the emulated RawModule) with a 2-SM 'device 0'."""
    cuda_host_emulation.fake_cupy(monkeypatch, sm_count=2, device_arrays=True)
    return sys.modules["cupy"]


def _compare(out, ref, dtype, what):
    assert out.dtype == np.float64 and out.shape == ref.shape
    assert not np.isnan(out).any(), f"NaN or unwritten output {what}"
    np.testing.assert_array_equal(np.isneginf(out), np.isneginf(ref), err_msg=what)
    finite = np.isfinite(ref)
    atol, rtol = (1e-10, 1e-12) if dtype == np.float64 else (1e-4, 2e-6)
    np.testing.assert_allclose(out[finite], ref[finite], atol=atol, rtol=rtol, err_msg=what)


# Each (kernel, dtype) is one compiled module (~20 s of g++): a log kernel and two compact ones.
@pytest.mark.slow
@pytest.mark.parametrize("kernel,dtype", [("gaussian", np.float32), ("gaussian", np.float64),
                                          ("exponential", np.float32), ("epanechnikov", np.float32),
                                          ("cosine", np.float64), ("tophat", np.float32)])
def test_emulated_cuda_kde_matches_the_cpu_engine(emulated_cupy, kernel, dtype):
    rng = input_rng(1)
    for m, n, d in [(1, 1, 1), (131, 300, 3), (40, 1100, 16), (33, 200, 17), (7, 150, 40)]:
        train = np.round(rng.normal(scale=2.0, size=(n, d)) * 64) / 64
        queries = np.round(rng.normal(scale=2.0, size=(m, d)) * 64) / 64
        queries[: m // 5] *= 40.0  # far queries: underflow for the log kernels, outside support for compact
        log_w = rng.normal(size=n)
        scales = 2.0 ** rng.integers(-1, 2, size=n)  # exact r² s²: the same support edge in float32
        for weights, inv in [(None, None), (log_w, scales)]:
            ref = cpu_logsum(queries, train, weights, kernel, inv)
            out = _kde_cuda.kde_logsum(queries.astype(dtype), train.astype(dtype), weights, kernel, inv)
            what = f"{kernel} {np.dtype(dtype).name} m={m} n={n} d={d} weighted={weights is not None}"
            _compare(out, ref, dtype, what)


@pytest.mark.slow
def test_emulated_slow_path_for_tiny_compact_sums(emulated_cupy):
    rng = input_rng(2)
    n, d = 300, 2
    train = np.round(rng.normal(size=(n, d)) * 64) / 64
    queries = np.round(rng.normal(size=(40, d)) * 64) / 64
    train[0] = 100.0
    log_w = np.full(n, -700.0) + rng.normal(scale=0.1, size=n)
    log_w[0] = 0.0
    ref = cpu_logsum(queries, train, log_w, "epanechnikov")
    assert np.isfinite(ref).sum() > 10
    for dtype in (np.float32,):
        out = _kde_cuda.kde_logsum(queries.astype(dtype), train.astype(dtype), log_w, "epanechnikov")
        _compare(out, ref, np.float64, "slow path")


@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["gaussian", "tophat"])
def test_emulated_leave_one_out_grid_matches_the_cpu_op(emulated_cupy, kernel):
    from fastdensity.kde._kde_cv_cpu import kde_loo_logsum_grid as cpu_grid

    rng = input_rng(3)
    inv = 1.0 / np.array([0.05, 0.3, 1.0, 2.5])
    for n, d in [(1, 2), (2, 1), (150, 3), (300, 18)]:
        train = np.round(rng.normal(size=(n, d)) * 64) / 64
        log_w = rng.normal(size=n)
        if n > 3:
            log_w[3] = -np.inf  # a zero weight
        ref = cpu_grid(train, log_w, kernel, inv)
        out = _kde_cuda.kde_loo_logsum_grid(train, log_w, kernel, inv)
        assert out.shape == ref.shape == (n, inv.size)
        _compare(np.asarray(out), ref, np.float64, f"loo {kernel} n={n} d={d}")


# ------------------------------------------------------------ the estimator's GPU path, emulated


def _data(rng, n=300, d=3):
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)), rng.uniform(0.2, 2.0, size=n)


@pytest.mark.slow
@pytest.mark.parametrize("kernel,bandwidth,adaptive", [
    ("gaussian", "scott", True),
    ("gaussian", 0.6, False),
    ("cosine", "matrix", True),
    ("epanechnikov", "silverman", False),
])
def test_emulated_kernel_density_on_device_arrays_matches_numpy(emulated_cupy, kernel, bandwidth, adaptive):
    from fastdensity import KernelDensity

    cp = emulated_cupy
    rng = input_rng(4)
    X, w = _data(rng)
    Y = rng.normal(size=(150, 3)) * 2.0
    if bandwidth == "matrix":
        bandwidth = np.cov(X.T) * 0.3
    cpu = KernelDensity(kernel=kernel, bandwidth=bandwidth, adaptive=adaptive).fit(X, sample_weight=w)
    dev = KernelDensity(kernel=kernel, bandwidth=bandwidth, adaptive=adaptive).fit(cp.asarray(X), sample_weight=w)
    assert isinstance(dev.training_data_, cp.ndarray) and isinstance(dev.sample_weight_, cp.ndarray)
    np.testing.assert_allclose(dev.bandwidth_matrix_, cpu.bandwidth_matrix_, rtol=1e-12)
    if adaptive:
        assert isinstance(dev.adaptive_factors_, cp.ndarray)
        np.testing.assert_allclose(dev.adaptive_factors_.get(), cpu.adaptive_factors_, rtol=1e-9)
    out = dev.score_samples(cp.asarray(Y))
    assert isinstance(out, cp.ndarray) and out.dtype == np.float64
    ref = cpu.score_samples(Y)
    _compare(out.get(), ref, np.float64, "estimator")
    # The device-fitted model on host data (state moved to the host once) and the host-fitted one
    # on device data give the same.
    _compare(np.asarray(dev.score_samples(Y)), ref, np.float64, "device fit, host data")
    _compare(cpu.score_samples(cp.asarray(Y)).get(), ref, np.float64, "host fit, device data")
    assert dev.score(cp.asarray(Y)) == pytest.approx(float(np.sum(ref)), rel=1e-10)


@pytest.mark.slow
def test_emulated_float32_backend_cuda_sample_and_cv(emulated_cupy):
    from fastdensity import KernelDensity

    cp = emulated_cupy
    rng = input_rng(5)
    X, _ = _data(rng, n=400, d=2)
    ref = KernelDensity(bandwidth=0.5).fit(X).score_samples(X)
    out = KernelDensity(bandwidth=0.5).fit(cp.asarray(X.astype(np.float32))).score_samples(
        cp.asarray(X.astype(np.float32)))
    assert isinstance(out, cp.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out.get(), ref, atol=2e-4, rtol=2e-6)
    host_fit = KernelDensity(bandwidth=0.5, backend="cuda").fit(X)
    host = host_fit.score_samples(X)
    assert type(host) is np.ndarray
    np.testing.assert_allclose(host, ref, rtol=1e-12, atol=1e-12)
    assert type(host_fit.sample(5, random_state=0)) is np.ndarray  # host data in, host draws out

    kde = KernelDensity(kernel="biweight", bandwidth=0.8).fit(cp.asarray(X))
    draws = kde.sample(20000, random_state=3)
    assert isinstance(draws, cp.ndarray) and draws.shape == (20000, 2)
    assert np.array_equal(draws.get(), kde.sample(20000, random_state=3).get())
    from fastdensity.kde._kernels import kernel_coordinate_variance

    cov = np.cov(X.T, bias=True) + 0.64 * kernel_coordinate_variance("biweight", 2) * np.eye(2)
    np.testing.assert_allclose(np.cov(draws.get().T), cov, rtol=0.06, atol=0.02)
    with pytest.raises(ValueError, match="X has 3 features, but KernelDensity is expecting 2"):
        kde.score_samples(cp.asarray(np.ones((2, 3))))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        kde.score_samples(cp.asarray(np.full((2, 2), np.nan)))


@pytest.mark.slow
def test_bench_gpu_kde_section_runs_on_the_emulation(emulated_cupy):
    import importlib.util
    import time
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "gpu.py"
    spec = importlib.util.spec_from_file_location("fastdensity_bench_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cp = emulated_cupy

    class Event:
        def record(self):
            self.t = time.perf_counter()

        def synchronize(self):
            pass

    cp.cuda.Event = Event
    cp.cuda.get_elapsed_time = lambda a, b: (b.t - a.t) * 1e3
    cp.cuda.get_current_stream = lambda: types.SimpleNamespace(synchronize=lambda: None)
    report = bench.Report()
    report.lines = []
    # a fixed draw: float32 log densities near a compact kernel's support edge lose digits
    # (d log(1 − r²) / dr² grows without bound there), so a fresh draw can exceed the bound
    bench.bench_kde(report, cp, None, quick=True, size=300, seed=3)
    text = "\n".join(report.lines)
    assert "FAILED" not in text, text
    rows = [line for line in report.lines if line.strip().split(" ")[0] in ("gaussian", "epanechnikov", "exponential")]
    assert len(rows) == 9, text
    for row in rows:
        err = float(row.split()[-1])
        assert err < (1e-3 if "float32" in row else 1e-9), row


@pytest.mark.parametrize("kernel,weighted", [("gaussian", False), ("epanechnikov", True)])
def test_emulated_cv_and_isj_bandwidths_match_the_cpu(emulated_cupy, kernel, weighted):
    from fastdensity import KernelDensity

    cp = emulated_cupy
    rng = input_rng(6)
    X = rng.standard_normal((250, 2)) @ np.array([[1.0, 0.0], [0.6, 0.5]]) + rng.uniform(-3, 3, size=2)
    w = rng.uniform(0.2, 2.0, size=250) if weighted else None
    cpu = KernelDensity(kernel=kernel, bandwidth="cv").fit(X, sample_weight=w)
    dev = KernelDensity(kernel=kernel, bandwidth="cv").fit(cp.asarray(X), sample_weight=None if w is None
                                                            else cp.asarray(w))
    assert isinstance(dev.training_data_, cp.ndarray)
    np.testing.assert_allclose(dev.bandwidth_matrix_, cpu.bandwidth_matrix_, rtol=1e-10)
    np.testing.assert_allclose(dev.score_samples(cp.asarray(X[:20])).get(), cpu.score_samples(X[:20]), rtol=1e-9)

    x = X[:, :1]
    cpu = KernelDensity(kernel=kernel, bandwidth="isj").fit(x, sample_weight=w)
    dev = KernelDensity(kernel=kernel, bandwidth="isj").fit(cp.asarray(x), sample_weight=None if w is None
                                                             else cp.asarray(w))
    assert dev.bandwidth_ == pytest.approx(cpu.bandwidth_, rel=1e-12)
    with pytest.raises(ValueError, match='"isj" is for 1-D data'):
        KernelDensity(bandwidth="isj").fit(cp.asarray(X))


RACE_SCRIPT = """
import numpy as np, pytest
import cuda_host_emulation as emu
from fastdensity.kde import _kde_cuda as gpu
from fastdensity.kde._kde_cpu import kde_logsum as cpu_logsum
mp = pytest.MonkeyPatch()
emu.fake_cupy(mp, sm_count=2)
rng = np.random.default_rng(4)
for max_splits in (1, gpu.MAX_SPLITS):  # 1: several tiles per block, so the tile loop's barriers count
    mp.setattr(gpu, "MAX_SPLITS", max_splits)
    for kernel, dtype, m, n, d in [("gaussian", np.float32, 70, 300, 3), ("epanechnikov", np.float64, 9, 300, 17)]:
        train = rng.normal(size=(n, d))
        queries = rng.normal(size=(m, d))
        log_w = rng.normal(size=n)
        got = gpu.kde_logsum(queries.astype(dtype), train.astype(dtype), log_w, kernel, None)
        ref = cpu_logsum(queries.astype(dtype).astype(np.float64), train.astype(dtype).astype(np.float64), log_w, kernel)
        assert np.allclose(got, ref, rtol=1e-4, atol=1e-4), (kernel, max_splits)
# the slow path (float32 sums too small to trust, redone in float64 row by row)
train = np.round(rng.normal(size=(300, 2)) * 64) / 64
queries = np.round(rng.normal(size=(40, 2)) * 64) / 64
train[0] = 100.0
log_w = np.full(300, -700.0) + rng.normal(scale=0.1, size=300)
log_w[0] = 0.0
ref = cpu_logsum(queries, train, log_w, "epanechnikov")
assert np.isfinite(ref).sum() > 10
for max_slow_blocks in (2, gpu.MAX_SLOW_BLOCKS):  # 2: each block takes several rows in turn
    mp.setattr(gpu, "MAX_SLOW_BLOCKS", max_slow_blocks)
    got = gpu.kde_logsum(queries.astype(np.float32), train.astype(np.float32), log_w, "epanechnikov")
    assert np.allclose(got, ref, rtol=1e-9, atol=1e-9), max_slow_blocks
loo = gpu.kde_loo_logsum_grid(rng.normal(size=(150, 3)), rng.normal(size=150), "gaussian", np.array([2.0, 0.5]))
assert np.asarray(loo).shape == (150, 2)
print("race check done")
"""


@pytest.mark.slow
@pytest.mark.parametrize("sanitizer", ["thread", "address"])
def test_emulated_kernels_are_race_free_and_in_bounds(sanitizer):
    """kde.cu's kernels under ThreadSanitizer (a shared-memory access no barrier orders) and
    AddressSanitizer (an access outside shared memory or an array): logsum (a log kernel in float32,
    a compact one in float64 at d > 16; one tile or several per block), the float64 slow path (one
    row or several per block) and leave-one-out. Deleting any one of 6 of kde.cu's 7 barriers makes
    the ThreadSanitizer run fail (checked by hand); the seventh, at the end of a slow-path row, is
    redundant (the reduction's last barrier already orders every read of another thread's slot)."""
    cuda_host_emulation.assert_sanitizer_clean(RACE_SCRIPT, sanitizer)
