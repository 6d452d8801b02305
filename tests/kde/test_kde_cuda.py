"""The CUDA KDE engine against the CPU engine, and KernelDensity on CuPy arrays and torch CUDA tensors.

GPU tests carry ``@pytest.mark.gpu`` (conftest skips them without CuPy and a GPU;
``FASTDENSITY_REQUIRE_GPU=1`` makes that a failure). Inputs are fresh random numbers on every run
(seeds from the OS, printed in the assertion messages), never zeros; outputs are poisoned with NaN
(through CuPy's memory pool, which hands freed blocks back) before each run so that an unwritten
element shows. The launch-geometry tests at the top run anywhere.
"""

from __future__ import annotations

import math
import secrets

import numpy as np
import pytest

from random_inputs import input_rng
from fastdensity.kde import _kde_cuda
from fastdensity.kde._kde_cpu import kde_logsum as cpu_logsum
from fastdensity.kde._kernels import COMPACT_KERNELS, KERNELS

# ------------------------------------------------------------------------- CPU-only parts


@pytest.mark.parametrize("m", [1, 31, 128, 1025, 10**6])
@pytest.mark.parametrize("n", [1, 127, 128, 129, 5000, 10**7])
@pytest.mark.parametrize("n_sm", [1, 132])
def test_launch_geometry_covers_every_point_once(m, n, n_sm):
    query_blocks, splits, split_len = _kde_cuda.launch_geometry(m, n, n_sm)
    assert query_blocks * _kde_cuda.BLOCK >= m > (query_blocks - 1) * _kde_cuda.BLOCK
    assert split_len % _kde_cuda.TILE == 0 and split_len > 0
    assert (splits - 1) * split_len < n <= splits * split_len  # no empty split, nothing left over
    assert 1 <= splits <= _kde_cuda.MAX_SPLITS
    if query_blocks < _kde_cuda.BLOCKS_PER_SM * n_sm and n >= 64 * _kde_cuda.TILE:
        # Few queries: the training points are split so that the chip fills up.
        assert query_blocks * splits >= min(_kde_cuda.BLOCKS_PER_SM * n_sm, query_blocks * n // split_len) // 2


def test_compiled_dimension_pads_up_and_falls_back_to_any_d():
    assert [_kde_cuda._compiled_d(d) for d in (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16, 17, 500)] == [
        1, 2, 3, 4, 6, 6, 8, 8, 12, 12, 16, 16, 0, 0]


def test_coordinate_scale_turns_the_profile_into_a_power_of_two():
    # gaussian: 2^(−(c r)²) = exp(−r²/2); exponential: 2^(−c r) = exp(−r)
    r = np.linspace(0.0, 30.0, 61)
    c = _kde_cuda.coordinate_scale("gaussian")
    np.testing.assert_allclose(2.0 ** (-((c * r) ** 2)), np.exp(-0.5 * r * r), rtol=1e-13)
    c = _kde_cuda.coordinate_scale("exponential")
    np.testing.assert_allclose(2.0 ** (-(c * r)), np.exp(-r), rtol=1e-13)
    assert all(_kde_cuda.coordinate_scale(k) == 1.0 for k in COMPACT_KERNELS)


# ------------------------------------------------------------------------------- GPU parts

gpu = pytest.mark.gpu


@pytest.fixture
def cp():
    return pytest.importorskip("cupy")


@pytest.fixture
def seed():
    return secrets.randbits(64)


def _poison(cp, nbytes=1 << 26):
    """Fill free device memory with NaN: the next allocations of the pool reuse it."""
    cp.get_default_memory_pool().free_all_blocks()
    block = cp.full(nbytes // 8, np.nan)
    del block


def _dyadic(rng, shape, spread=3.0):
    # Multiples of 1/64: squared distances are exact in float32 and float64, in any summation order,
    # so compact kernels see the same support on both engines (also exactly on its edge).
    return np.round(rng.normal(scale=spread, size=shape) * 64.0) / 64.0


def _tolerance(dtype):
    # float64: rounding of the sums only; float32 (compared with the float64 CPU engine): per-tile
    # float sums and ex2.approx, relative ~1e-6 of the sum, plus ~1e-7 of |log| for far queries.
    return (1e-9, 1e-12) if dtype == np.float64 else (1e-4, 2e-6)


def _check(gpu_out, ref, dtype, seed, what=""):
    atol, rtol = _tolerance(dtype)
    out = gpu_out.get()
    assert out.dtype == np.float64 and out.shape == ref.shape
    assert not np.isnan(out).any(), f"unwritten or NaN output (seed {seed}) {what}"
    np.testing.assert_array_equal(np.isneginf(out), np.isneginf(ref), err_msg=f"seed {seed} {what}")
    finite = np.isfinite(ref)
    np.testing.assert_allclose(out[finite], ref[finite], atol=atol, rtol=rtol, err_msg=f"seed {seed} {what}")


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("m,n,d", [(1, 1, 1), (31, 1025, 2), (1025, 31, 3), (257, 3001, 5), (40, 700, 16),
                                   (33, 300, 17), (5, 129, 40)])
def test_kde_logsum_matches_the_cpu_engine(cp, seed, dtype, kernel, m, n, d):
    rng = np.random.default_rng(seed)
    train = _dyadic(rng, (n, d))
    queries = np.concatenate([_dyadic(rng, (m - m // 4, d)), _dyadic(rng, (m // 4, d), spread=30.0)])
    log_w = rng.normal(size=n)
    # Powers of two: r² s² stays exact in float32, so compact kernels see the same support edge.
    inv_scales = 2.0 ** rng.integers(-1, 2, size=n)
    for weights, scales in [(None, None), (log_w, None), (log_w, inv_scales)]:
        ref = cpu_logsum(queries, train, weights, kernel, scales)  # float64 oracle
        _poison(cp)
        out = _kde_cuda.kde_logsum(
            cp.asarray(queries, dtype=dtype), cp.asarray(train, dtype=dtype),
            None if weights is None else cp.asarray(weights), kernel,
            None if scales is None else cp.asarray(scales),
        )
        _check(out, ref, dtype, seed, f"weights={weights is not None} adaptive={scales is not None}")


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", ["gaussian", "exponential"])
def test_far_queries_stay_finite_and_correct(cp, seed, dtype, kernel):
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(2000, 3))
    queries = rng.normal(size=(300, 3)) * 1e3  # exp(−r²/2) underflows every term in both dtypes
    ref = cpu_logsum(queries, train, None, kernel)
    assert np.all(np.isfinite(ref)) and np.all(ref < -1e3)
    _poison(cp)
    out = _kde_cuda.kde_logsum(cp.asarray(queries, dtype=dtype), cp.asarray(train, dtype=dtype), None, kernel)
    # float32 coordinates carry relative rounding ~6e-8, so |log| ~ r² is good to that relative level.
    atol, rtol = (1e-9, 1e-12) if dtype == np.float64 else (1e-3, 5e-6)
    np.testing.assert_allclose(out.get(), ref, atol=atol, rtol=rtol, err_msg=f"seed {seed}")


@gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", sorted(COMPACT_KERNELS))
def test_tiny_compact_sums_take_the_exact_slow_path(cp, seed, dtype, kernel):
    rng = np.random.default_rng(seed)
    n, d = 500, 2
    train = _dyadic(rng, (n, d), spread=1.0)
    queries = _dyadic(rng, (64, d), spread=1.0)
    # One heavy point far away, every other weight ~e^-750 relative to it: the plain sums of the
    # queries near the data are far below tiny (even 0 after scaling), so they are recomputed.
    train[0] = 100.0
    log_w = np.full(n, -750.0) + rng.normal(scale=0.1, size=n)
    log_w[0] = 0.0
    ref = cpu_logsum(queries, train, log_w, kernel)
    assert np.isfinite(ref).sum() > 10
    _poison(cp)
    out = _kde_cuda.kde_logsum(cp.asarray(queries, dtype=dtype), cp.asarray(train, dtype=dtype),
                               cp.asarray(log_w), kernel)
    np.testing.assert_array_equal(np.isneginf(out.get()), np.isneginf(ref), err_msg=f"seed {seed}")
    finite = np.isfinite(ref)
    np.testing.assert_allclose(out.get()[finite], ref[finite], rtol=1e-12, atol=1e-9, err_msg=f"seed {seed}")


@gpu
@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_results_do_not_depend_on_the_launch_geometry_and_repeat_bitwise(cp, seed, kernel, monkeypatch):
    rng = np.random.default_rng(seed)
    train = cp.asarray(rng.normal(size=(20000, 4)))
    queries = cp.asarray(rng.normal(size=(300, 4)))
    first = _kde_cuda.kde_logsum(queries, train, None, kernel)
    again = _kde_cuda.kde_logsum(queries, train, None, kernel)
    assert cp.array_equal(first, again)  # no atomics: the same bits every time
    monkeypatch.setattr(_kde_cuda, "multiprocessor_count", lambda: 1)  # one split instead of many
    one_split = _kde_cuda.kde_logsum(queries, train, None, kernel)
    np.testing.assert_allclose(one_split.get(), first.get(), rtol=1e-13, atol=1e-12, err_msg=f"seed {seed}")


@gpu
@pytest.mark.parametrize("kernel", KERNELS)
def test_leave_one_out_grid_matches_the_cpu_op(cp, seed, kernel):
    from fastdensity.kde._kde_cv_cpu import kde_loo_logsum_grid as cpu_grid

    rng = np.random.default_rng(seed)
    inv = 1.0 / np.geomspace(0.05, 3.0, 9)
    for n, d in [(1, 2), (2, 1), (1025, 3), (700, 17)]:
        train = _dyadic(rng, (n, d), spread=1.0)
        log_w = rng.normal(size=n)
        if n > 3:
            log_w[3] = -np.inf
        ref = cpu_grid(train, log_w, kernel, inv)
        _poison(cp)
        out = _kde_cuda.kde_loo_logsum_grid(cp.asarray(train), cp.asarray(log_w), kernel, inv)
        assert out.shape == (n, inv.size)
        got = out.get()
        assert not np.isnan(got).any(), f"seed {seed}"
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref), err_msg=f"seed {seed}")
        finite = np.isfinite(ref)
        np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-12, atol=1e-9, err_msg=f"seed {seed}")


@gpu
def test_kde_logsum_errors_match_the_cpu_contract(cp):
    q = cp.ones((3, 2))
    with pytest.raises(ValueError, match=r"queries must have shape \(m, 2\); got \(3, 3\)"):
        _kde_cuda.kde_logsum(cp.ones((3, 3)), cp.ones((4, 2)))
    with pytest.raises(TypeError, match="both be float32 or both float64"):
        _kde_cuda.kde_logsum(q, cp.ones((4, 2), dtype=cp.float32))
    with pytest.raises(ValueError, match="the training set is empty"):
        _kde_cuda.kde_logsum(q, cp.ones((0, 2)))
    assert _kde_cuda.kde_logsum(cp.ones((0, 2)), cp.ones((4, 2))).shape == (0,)


# --------------------------------------------------------------------------- the estimator


def _data(seed, n=700, d=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)), rng.uniform(0.2, 2.0, size=n)


@gpu
@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "cosine"])
@pytest.mark.parametrize("bandwidth", [0.7, "scott", "matrix"])
@pytest.mark.parametrize("adaptive", [False, True])
def test_kernel_density_on_cupy_matches_numpy(cp, seed, kernel, bandwidth, adaptive):
    from fastdensity import KernelDensity

    X, w = _data(seed)
    Y = np.random.default_rng(seed + 1).normal(size=(257, 3)) * 2.0
    if bandwidth == "matrix":
        bandwidth = np.cov(X.T) * 0.3
    cpu = KernelDensity(kernel=kernel, bandwidth=bandwidth, adaptive=adaptive).fit(X, sample_weight=w)
    dev = KernelDensity(kernel=kernel, bandwidth=bandwidth, adaptive=adaptive).fit(cp.asarray(X), sample_weight=w)
    assert isinstance(dev.training_data_, cp.ndarray)
    np.testing.assert_allclose(dev.bandwidth_matrix_, cpu.bandwidth_matrix_, rtol=1e-10)
    _poison(cp)
    out = dev.score_samples(cp.asarray(Y))
    assert isinstance(out, cp.ndarray) and out.dtype == cp.float64
    ref = cpu.score_samples(Y)
    np.testing.assert_array_equal(np.isneginf(out.get()), np.isneginf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(out.get()[finite], ref[finite], rtol=1e-9, atol=1e-9, err_msg=f"seed {seed}")
    # The GPU-fitted model scores host data on the CPU (state moved once) with the same answer.
    np.testing.assert_allclose(dev.score_samples(Y)[finite], ref[finite], rtol=1e-9, atol=1e-9)
    assert dev.score(cp.asarray(Y)) == pytest.approx(float(np.sum(out.get())), rel=1e-12)


@gpu
def test_float32_in_float32_out_and_backend_cuda_on_host_data(cp, seed):
    from fastdensity import KernelDensity

    X, _ = _data(seed)
    X32 = X.astype(np.float32)
    ref = KernelDensity(bandwidth=0.5).fit(X).score_samples(X)
    out = KernelDensity(bandwidth=0.5).fit(cp.asarray(X32)).score_samples(cp.asarray(X32))
    assert out.dtype == cp.float32
    np.testing.assert_allclose(out.get(), ref, atol=2e-4, rtol=2e-6)
    host_fit = KernelDensity(bandwidth=0.5, backend="cuda").fit(X)
    host = host_fit.score_samples(X)
    assert type(host) is np.ndarray
    np.testing.assert_allclose(host, ref, rtol=1e-10)
    assert type(host_fit.sample(5, random_state=0)) is np.ndarray


@gpu
def test_torch_cuda_tensors_round_trip_without_copies(cp, seed):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch was built without CUDA")
    from fastdensity import KernelDensity

    X, _ = _data(seed)
    Xt = torch.as_tensor(X, device="cuda")
    kde = KernelDensity(bandwidth=0.6).fit(Xt)
    assert kde.training_data_.data.ptr == Xt.data_ptr()  # DLPack: the tensor's own memory
    out = kde.score_samples(Xt)
    assert isinstance(out, torch.Tensor) and out.device == Xt.device and out.dtype == torch.float64
    ref = KernelDensity(bandwidth=0.6).fit(X).score_samples(X)
    np.testing.assert_allclose(out.cpu().numpy(), ref, rtol=1e-9, atol=1e-9)
    samples = kde.sample(50, random_state=0)
    assert isinstance(samples, torch.Tensor) and samples.device == Xt.device and samples.shape == (50, 3)


@gpu
@pytest.mark.parametrize("kernel", KERNELS)
def test_sample_draws_on_the_device_from_the_density(cp, seed, kernel):
    from fastdensity import KernelDensity

    X, w = _data(seed, n=400, d=2)
    kde = KernelDensity(kernel=kernel, bandwidth=0.8).fit(cp.asarray(X), sample_weight=w)
    draws = kde.sample(40000, random_state=seed % 2**32)
    assert isinstance(draws, cp.ndarray) and draws.shape == (40000, 2) and draws.dtype == cp.float64
    again = kde.sample(40000, random_state=seed % 2**32)
    assert cp.array_equal(draws, again)  # random_state is honoured on the device
    # Mean and covariance of the mixture: weighted data mean; weighted data covariance + kernel's.
    from fastdensity.kde._kernels import kernel_coordinate_variance

    p = w / w.sum()
    mean = p @ X
    cov = (X - mean).T @ ((X - mean) * p[:, None]) + 0.64 * kernel_coordinate_variance(kernel, 2) * np.eye(2)
    got = draws.get()
    se = np.sqrt(np.diag(cov) / got.shape[0])
    assert np.all(np.abs(got.mean(axis=0) - mean) < 5 * se), f"seed {seed}"
    np.testing.assert_allclose(np.cov(got.T), cov, rtol=0.05, atol=0.02, err_msg=f"seed {seed}")


@gpu
def test_gpu_data_against_a_model_fitted_on_the_host_moves_the_state_once(cp, seed):
    from fastdensity import KernelDensity

    X, _ = _data(seed)
    kde = KernelDensity(bandwidth=0.5).fit(X)
    first = kde.score_samples(cp.asarray(X))
    cached = dict(kde._engine_cache)
    second = kde.score_samples(cp.asarray(X))
    assert cp.array_equal(first, second)
    assert all(kde._engine_cache[k] is v for k, v in cached.items())  # built once, reused
    np.testing.assert_allclose(first.get(), kde.score_samples(X), rtol=1e-9, atol=1e-9)


@gpu
@pytest.mark.parametrize("rule", ["cv", "isj"])
def test_data_driven_bandwidths_on_the_gpu_match_the_cpu(cp, rule):
    from fastdensity import KernelDensity

    rng = input_rng(1)
    X = rng.standard_normal((3001, 1 if rule == "isj" else 3))
    cpu = KernelDensity(bandwidth=rule).fit(X)
    dev = KernelDensity(bandwidth=rule).fit(cp.asarray(X))
    np.testing.assert_allclose(dev.bandwidth_matrix_, cpu.bandwidth_matrix_, rtol=1e-9)
    assert isinstance(dev.training_data_, cp.ndarray)


def test_math_of_the_finish_step():
    # The finish step's identity, checked in NumPy: Σ 2^(−u) = 2^(−M) Σ_k S_k 2^(M − m_k).
    rng = input_rng(2)
    u = rng.uniform(0, 2000, size=(4, 50))
    m_k = u.min(axis=1)
    S_k = np.exp2(m_k[:, None] - u).sum(axis=1)
    M = m_k.min()
    total = np.sum(S_k * np.exp2(M - m_k))
    direct = math.log(np.sum(np.exp2(-(u - M)))) - M * math.log(2.0)
    assert (math.log2(total) - M) * math.log(2.0) == pytest.approx(direct, rel=1e-12)


def test_bench_gpu_exits_with_a_message_without_a_gpu():
    import subprocess
    import sys
    from pathlib import Path

    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a GPU is present: bench/gpu.py would run in full")
    except Exception:  # no CuPy, no driver: the case under test
        pass
    script = Path(__file__).resolve().parents[2] / "bench" / "gpu.py"
    result = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "bench/gpu.py needs an NVIDIA GPU with CuPy" in result.stderr and "pip install fastdensity" in result.stderr
