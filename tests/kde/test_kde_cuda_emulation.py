"""kernels/kde.cu and its launcher executed on the CPU: a check of the CUDA path that needs no GPU.

The launcher ``_kde_cuda.kde_logsum`` runs unchanged against a stand-in ``cupy`` whose arrays are
NumPy arrays and whose ``RawModule`` compiles the very source text the loader produces (``#line``
directive included) with g++ and a small shim: every CUDA thread of a block is an OS thread,
``__shared__`` variables are shared by them, ``__syncthreads`` is a barrier, blocks run one after
the other. That executes the kernels' indexing, tiling, tails, splits, barriers, the merge of the
partials and the slow path, and compares the result with the CPU engine. What it cannot show:
the device's ex2.approx / flush-to-zero rounding, timing, and races that the scheduling of real
warps would expose (compute-sanitizer on a GPU does that).
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from fastdensity._backend import _cuda
from fastdensity.kde import _kde_cuda
from fastdensity.kde._kde_cpu import kde_logsum as cpu_logsum

GXX = shutil.which("g++")
pytestmark = [pytest.mark.skipif(GXX is None, reason="g++ is not installed")]

SHIM = r"""
#include <algorithm>
#include <barrier>
#include <bit>
#include <cmath>
#include <thread>
#include <vector>
#define __CUDACC_RTC__ 1
#define FASTDENSITY_HOST_EMULATION 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
struct fd_dim3 { unsigned x = 0, y = 0, z = 0; };
thread_local fd_dim3 threadIdx, blockIdx;
fd_dim3 blockDim, gridDim;
std::barrier<>* fd_barrier = nullptr;
inline void __syncthreads() { fd_barrier->arrive_and_wait(); }
constexpr float __int_as_float(int x) { return std::bit_cast<float>(x); }
constexpr double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float cospif(float x) { return static_cast<float>(std::cos(3.14159265358979323846 * x)); }
inline double cospi(double x) { return std::cos(3.14159265358979323846 * x); }
inline long long min(long long a, long long b) { return a < b ? a : b; }
using std::fma; using std::isnan; using std::exp2; using std::log1p; using std::sqrt; using std::log;
template <typename F>
void fd_launch(unsigned gx, unsigned gy, unsigned bx, F body) {
    gridDim = {gx, gy, 1};
    blockDim = {bx, 1, 1};
    for (unsigned y = 0; y < gy; ++y) {
        for (unsigned x = 0; x < gx; ++x) {
            std::barrier<> bar(bx);
            fd_barrier = &bar;
            std::vector<std::thread> threads;
            for (unsigned t = 0; t < bx; ++t) {
                threads.emplace_back([=] { threadIdx = {t, 0, 0}; blockIdx = {x, y, 0}; body(); });
            }
            for (auto& th : threads) th.join();
        }
    }
}
"""


def _signature(name):
    """C++ parameter types of the kernel behind a name expression."""
    if name == "kde_logsum_finish_log":
        return ["const double*", "const double*", "long long", "int", "double", "double*"]
    if name == "kde_logsum_finish_sum":
        return ["const double*", "long long", "int", "double", "double", "int", "double*"]
    T = re.search(r"<(float|double)", name).group(1)
    if name.startswith("kde_logsum_slow"):
        return [f"const {T}*", f"const {T}*", "const double*", f"const {T}*", "int", "int", "long long", "int",
                "const long long*", "long long", "double*"]
    return [f"const {T}*"] * 4 + ["long long", "long long", "int", "long long", T, "int", "double*", "double*"]


class _EmulatedModule:
    def __init__(self, code, options, name_expressions, workdir):
        include = [o for o in options if o.startswith("-I")]
        wrappers = []
        for i, name in enumerate(name_expressions):
            types_ = _signature(name)
            unpack = "".join(f"    auto a{j} = *reinterpret_cast<{t}*>(args[{j}]);\n" for j, t in enumerate(types_))
            call = ", ".join(f"a{j}" for j in range(len(types_)))
            wrappers.append(
                f'extern "C" void fd_run_{i}(unsigned gx, unsigned gy, unsigned bx, void** args) {{\n{unpack}'
                f"    fd_launch(gx, gy, bx, [=] {{ {name}({call}); }});\n}}\n"
            )
        text = SHIM + code + '\n#line 1 "emulation_wrappers"\n' + "".join(wrappers)
        key = hashlib.sha256(text.encode()).hexdigest()[:16]
        lib = workdir / f"kde_emulated_{key}.so"
        if not lib.exists():
            src = workdir / f"kde_emulated_{key}.cpp"
            src.write_text(text)
            cmd = [GXX, "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", *include, str(src), "-o", str(lib)]
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, result.stderr[-4000:]
        self.lib = ctypes.CDLL(str(lib))
        self.index = {name: i for i, name in enumerate(name_expressions)}

    def get_function(self, name):
        fn = getattr(self.lib, f"fd_run_{self.index[name]}")
        fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
        fn.restype = None

        def launch(grid, block, args):
            grid = tuple(grid) + (1,) * (2 - len(grid))
            holders = []
            for a in args:
                if isinstance(a, np.ndarray):
                    assert a.flags.c_contiguous, "kernels get contiguous arrays"
                    holders.append(ctypes.c_void_p(a.ctypes.data))
                else:
                    ctype = {np.dtype(np.int64): ctypes.c_longlong, np.dtype(np.int32): ctypes.c_int,
                             np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}
                    holders.append(ctype[np.asarray(a).dtype](a.item()))
            ptrs = (ctypes.c_void_p * len(holders))(*[ctypes.addressof(h) for h in holders])
            fn(grid[0], grid[1], block[0], ptrs)

        return launch


class _Device:
    """Device 0 of the stand-in: usable as ``with array.device:`` and ``with cupy.cuda.Device(0):``."""

    id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _DeviceArray(np.ndarray):
    """A NumPy array that poses as a CuPy array on device 0 (``.device``, ``.get()``)."""

    @property
    def device(self):
        return _Device()

    def get(self):
        return np.array(self)


def _on_device(value):
    if isinstance(value, np.ndarray) and not isinstance(value, _DeviceArray):
        return value.view(_DeviceArray)
    if isinstance(value, tuple):
        return tuple(_on_device(v) for v in value)
    return value


def _wrap(fn):
    return lambda *args, **kwargs: _on_device(fn(*args, **kwargs))


class _RandomState:
    def __init__(self, seed):
        self._rs = np.random.RandomState(int(seed) % 2**32)

    def __getattr__(self, name):
        return _wrap(getattr(self._rs, name))


@pytest.fixture(scope="module")
def _workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("kde_emulation")


@pytest.fixture
def emulated_cupy(monkeypatch, _workdir):
    """A ``cupy`` made of NumPy plus the emulated RawModule, with a 2-SM 'device 0'."""
    fake = types.ModuleType("cupy")
    for name in ("asarray", "ascontiguousarray", "zeros", "ones", "empty", "full", "exp", "log", "sqrt", "sin",
                 "max", "sum", "any", "where", "isfinite", "isnan", "flatnonzero", "array_equal"):
        setattr(fake, name, _wrap(getattr(np, name)))
    for name in ("float32", "float64", "int64"):
        setattr(fake, name, getattr(np, name))
    fake.ndarray = _DeviceArray
    fake.linalg = types.SimpleNamespace(norm=_wrap(np.linalg.norm))
    fake.random = types.SimpleNamespace(RandomState=_RandomState)
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, getDevice=lambda: 0,
                                    getDeviceProperties=lambda i: {"multiProcessorCount": 2})
    fake.cuda = types.SimpleNamespace(runtime=runtime, Device=lambda i=0: _Device())
    fake.RawModule = lambda code, options, name_expressions: _EmulatedModule(code, options, name_expressions,
                                                                            _workdir)
    from scipy.linalg import solve_triangular

    linalg = types.ModuleType("cupyx.scipy.linalg")
    linalg.solve_triangular = _wrap(solve_triangular)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupyx", types.ModuleType("cupyx"))
    monkeypatch.setitem(sys.modules, "cupyx.scipy", types.ModuleType("cupyx.scipy"))
    monkeypatch.setitem(sys.modules, "cupyx.scipy.linalg", linalg)
    # array_kind asks isinstance(x, np.ndarray) first; the stand-in arrays are NumPy subclasses.
    from fastdensity._backend import _convert, _namespace
    from fastdensity.kde import _kde

    real_kind = _namespace.array_kind

    def kind(x):
        return _namespace.ArrayKind("cupy", "cuda") if isinstance(x, _DeviceArray) else real_kind(x)

    for module in (_namespace, _convert, _kde):
        monkeypatch.setattr(module, "array_kind", kind)
    _cuda._module.cache_clear()
    _cuda._device_properties.cache_clear()
    yield fake
    _cuda._module.cache_clear()
    _cuda._device_properties.cache_clear()


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
    rng = np.random.default_rng()
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
    rng = np.random.default_rng()
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

    rng = np.random.default_rng()
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
    rng = np.random.default_rng()
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
    rng = np.random.default_rng()
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
    bench.bench_kde(report, cp, None, quick=True, size=300)
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
    rng = np.random.default_rng()
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
