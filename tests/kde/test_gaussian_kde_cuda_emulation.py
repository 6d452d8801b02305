"""gaussian_kde's GPU path end to end: on the host emulation of CuPy and kernels/kde.cu, and on a real
GPU (``@pytest.mark.gpu``, skipped without one).

The emulation (tests/cuda_host_emulation.py, ``device_arrays=True``) hands out NumPy arrays that play
CuPy arrays on a GPU, and runs the real CUDA launcher (``_kde_cuda.kde_logsum``) on kernels/kde.cu
compiled with g++: so the dispatch of gaussian_kde (CuPy dataset, CuPy points, the two mixed with
host ones), the validation and whitening on the device, the cache of the whitened training set and
the conversion of the results are exercised without a GPU, and compared with the CPU results. What
it cannot show: the GPU's rounding (ex2.approx, flush to zero), CuPy's own functions (the stand-in is
NumPy), speed. The GPU tests run the same checks on real CuPy with fresh random inputs.
"""

from __future__ import annotations

import sys

import cuda_host_emulation
import numpy as np
import pytest

from random_inputs import input_rng
from fastdensity import gaussian_kde

needs_gxx = pytest.mark.skipif(not cuda_host_emulation.available(), reason="g++ is not installed")
# float64 sums on both engines; the GPU kernel's exp2 of pre-scaled coordinates and its split sums
# round differently from the CPU's exp: a few ulps per term, relative 1e-12 is ample.
RTOL = 1e-12


@pytest.fixture
def emulated_cupy(monkeypatch):
    """The emulation's ``cupy`` (device arrays, the emulated RawModule) with a 2-SM 'device 0'."""
    kernels = cuda_host_emulation.fake_cupy(monkeypatch, sm_count=2, device_arrays=True)
    cp = sys.modules["cupy"]
    cp.emulated_kernels = kernels  # the EmulatedKernel objects by name, as they are asked for
    return cp


@pytest.fixture
def real_cupy():
    return pytest.importorskip("cupy")


def _inputs(rng, d, n, m, dtype, weighted):
    mix = np.eye(d) + 0.6 * np.tri(d, k=-1)
    x = (mix @ rng.standard_normal((d, n)) + np.arange(d)[:, None]).astype(dtype)
    pts = (mix @ rng.standard_normal((d, m)) * 1.5 + np.arange(d)[:, None]).astype(dtype)
    w = rng.uniform(0.2, 2.0, n) if weighted else None
    if weighted:
        w[:5] = 0.0  # zero weights are dropped from the sums
    return x, pts, w


def _host(cp, a):
    assert isinstance(a, cp.ndarray), type(a)
    return cp.asnumpy(a)


def check_gpu_path(cp, rng, d, dtype, weighted, n=300, m=150):
    """A kde on CuPy data against the same kde on NumPy data: attributes, densities (all four
    names), the mixed host/device combinations, resample, marginal, the host-only methods."""
    x, pts, w = _inputs(rng, d, n, m, dtype, weighted)
    cpu = gaussian_kde(x, weights=w)
    dev = gaussian_kde(cp.asarray(x), weights=None if w is None else cp.asarray(w))
    assert isinstance(dev.dataset, cp.ndarray) and dev.dataset.dtype == dtype
    assert isinstance(dev.weights, cp.ndarray)
    for name in ("factor", "covariance", "cho_cov", "log_det", "neff", "inv_cov"):
        np.testing.assert_allclose(getattr(dev, name), getattr(cpu, name), rtol=1e-12, err_msg=name)
    assert type(dev.covariance) is np.ndarray and type(dev.cho_cov) is np.ndarray
    np.testing.assert_allclose(_host(cp, dev.weights), cpu.weights, rtol=1e-15)

    P = cp.asarray(pts)
    for method in ("evaluate", "pdf", "__call__", "logpdf"):
        got = getattr(dev, method)(P)
        assert isinstance(got, cp.ndarray) and got.dtype == np.float64 and got.shape == (m,), method
        np.testing.assert_allclose(_host(cp, got), getattr(cpu, method)(pts), rtol=RTOL, err_msg=method)
    ref = cpu.logpdf(pts)
    # host kde, CuPy points: the whitened training set is uploaded once and the sums run on the GPU
    mixed = cpu.logpdf(P)
    assert isinstance(mixed, cp.ndarray)
    np.testing.assert_allclose(_host(cp, mixed), ref, rtol=RTOL)
    states = cpu._cache[1]
    assert set(states) == {("cpu", None), ("cuda", P.device.id)}
    first = states[("cuda", P.device.id)]
    cpu.logpdf(P)
    assert cpu._cache[1][("cuda", P.device.id)] is first  # built once, reused
    # GPU kde, host points: uploaded, summed on the GPU, a NumPy result
    back = dev.logpdf(pts)
    assert type(back) is np.ndarray and back.dtype == np.float64
    np.testing.assert_allclose(back, ref, rtol=RTOL)
    # far points stay finite, and the single-point / row-vector shapes are scipy's
    far = np.full((d, 3), 1e3) * np.array([1.0, -2.0, 5.0])
    np.testing.assert_allclose(_host(cp, dev.logpdf(cp.asarray(far))), cpu.logpdf(far), rtol=RTOL)
    one = cp.asarray(pts[:, 0])
    assert dev.logpdf(one).shape == cpu.logpdf(pts[:, 0]).shape == (1,)
    with pytest.raises(ValueError, match=f"points have dimension {d + 1}, dataset has dimension {d}"):
        dev.logpdf(cp.asarray(np.zeros((d + 1, 4))))
    with pytest.raises(ValueError, match="`points` contains NaN"):
        dev.logpdf(cp.asarray(np.full((d, 2), np.nan)))

    # a new bandwidth rebuilds the device state
    dev.set_bandwidth(0.4)
    cpu.set_bandwidth(0.4)
    np.testing.assert_allclose(_host(cp, dev.evaluate(P)), cpu.evaluate(pts), rtol=RTOL)

    draws = dev.resample(2000, seed=7)
    assert isinstance(draws, cp.ndarray) and draws.shape == (d, 2000) and draws.dtype == np.float64
    np.testing.assert_array_equal(_host(cp, draws), _host(cp, dev.resample(2000, seed=7)))
    assert dev.resample(seed=1).shape == (d, int(dev.neff))  # neff: the same to rounding

    if d > 1:
        mdev, mcpu = dev.marginal([d - 1, 0]), cpu.marginal([d - 1, 0])
        assert isinstance(mdev.dataset, cp.ndarray)
        np.testing.assert_allclose(mdev.covariance, mcpu.covariance, rtol=1e-12)
        np.testing.assert_allclose(_host(cp, mdev.logpdf(cp.asarray(pts[[d - 1, 0]]))),
                                   mcpu.logpdf(pts[[d - 1, 0]]), rtol=RTOL)
    for call in (lambda k: k.integrate_gaussian(np.zeros(d), np.eye(d)),
                 lambda k: k.integrate_box_1d(0.0, 1.0),
                 lambda k: k.integrate_box(np.zeros(d), np.ones(d)),
                 lambda k: k.integrate_kde(cpu)):
        with pytest.raises(NotImplementedError, match=r"has no GPU implementation.*cupy.asnumpy\(kde.dataset\)"):
            call(dev)
    with pytest.raises(NotImplementedError, match="gaussian_kde.integrate_kde has no GPU implementation"):
        cpu.integrate_kde(dev)


# ------------------------------------------------------------------------------- the emulation


@needs_gxx
def test_emulated_gpu_path_weighted_2d(emulated_cupy):
    check_gpu_path(emulated_cupy, input_rng(40), 2, np.float64, True)
    # the sums ran in kde.cu's double-precision Gaussian kernel (d = 2 instantiation) and its finish step
    launched = {name for name, kernel in emulated_cupy.emulated_kernels.items() if kernel.launches}
    assert {"kde_logsum_gaussian<double, 2, false>", "kde_logsum_finish_log"} <= launched, launched


@needs_gxx
@pytest.mark.slow
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 2, 5])
def test_emulated_gpu_path_matches_the_cpu(emulated_cupy, d, dtype, weighted):
    check_gpu_path(emulated_cupy, input_rng(41 + d), d, dtype, weighted)


@needs_gxx
def test_emulated_gpu_arrays_never_come_to_the_host(emulated_cupy, monkeypatch):
    """Only scalars, (d,) and (d, d) reductions, and the result for host points, leave the device."""
    cp = emulated_cupy
    fetched = []
    real_get = cuda_host_emulation.DeviceArray.get

    def get(self):
        fetched.append(self.shape)
        return real_get(self)

    monkeypatch.setattr(cuda_host_emulation.DeviceArray, "get", get)
    rng = input_rng(42)
    d, n, m = 3, 200, 90
    x, pts, w = _inputs(rng, d, n, m, np.float64, True)
    kde = gaussian_kde(cp.asarray(x), weights=cp.asarray(w))
    kde.logpdf(cp.asarray(pts))
    kde.evaluate(cp.asarray(pts))
    kde.resample(50, seed=1)
    kde.marginal(1).logpdf(cp.asarray(pts[1]))
    assert fetched and all(int(np.prod(s)) <= d * d for s in fetched), fetched
    fetched.clear()
    kde.logpdf(pts)  # host points: the (m,) result comes back, nothing else
    assert [s for s in fetched if int(np.prod(s)) > d * d] == [(m,)], fetched


@needs_gxx
def test_emulated_backends_and_errors(emulated_cupy):
    cp = emulated_cupy
    rng = input_rng(43)
    x, pts, w = _inputs(rng, 2, 200, 50, np.float64, False)
    ref = gaussian_kde(x).logpdf(pts)
    up = gaussian_kde(x, backend="cuda")  # host data uploaded
    assert isinstance(up.dataset, cp.ndarray)
    out = up.logpdf(pts)
    assert type(out) is np.ndarray
    np.testing.assert_allclose(out, ref, rtol=RTOL)
    assert type(up.resample(5, seed=0)) is np.ndarray  # host data in, host draws out
    with pytest.raises(TypeError, match="backend='cpu' was asked for, but the data is a cupy array on the GPU"):
        gaussian_kde(cp.asarray(x), backend="cpu")
    host_only = gaussian_kde(x, backend="cpu")
    with pytest.raises(TypeError, match="backend='cpu' was asked for, but the points are a cupy array"):
        host_only.logpdf(cp.asarray(pts))
    with pytest.raises(ValueError, match="backend must be one of"):
        gaussian_kde(x, backend="gpu")
    with pytest.raises(TypeError, match="cupy arrays on cuda are not supported by the CPU backend"):
        host_only.integrate_gaussian(cp.asarray(np.zeros(2)), np.eye(2))
    # the device validation gives the host's messages
    with pytest.raises(ValueError, match="`dataset` input should have multiple elements"):
        gaussian_kde(cp.asarray(np.ones(1)))
    with pytest.raises(ValueError, match="array must not contain infs or NaNs: `dataset` contains NaN"):
        gaussian_kde(cp.asarray(np.array([0.0, np.nan, 1.0])))
    with pytest.raises(ValueError, match="`weights` must be non-negative"):
        gaussian_kde(cp.asarray(x), weights=cp.asarray(-np.ones(200)))
    with pytest.raises(ValueError, match="`weights` input should be of length n. Got length 3"):
        gaussian_kde(cp.asarray(x), weights=cp.asarray(np.ones(3)))
    with pytest.raises(np.linalg.LinAlgError, match="lower-dimensional subspace of the space"):
        gaussian_kde(cp.asarray(np.vstack([x[0], 2.0 * x[0] + 1.0])))
    with pytest.raises(np.linalg.LinAlgError, match=r"Here dimension\(s\) \[1\] of `dataset` are constant"):
        gaussian_kde(cp.asarray(np.vstack([x[0], np.full(200, 3.0)])))
    with pytest.raises(ValueError, match="Number of dimensions is greater than number of samples."):
        gaussian_kde(cp.asarray(np.ones((3, 2))))
    with pytest.raises(TypeError, match="can't get common type for non-numeric array"):
        gaussian_kde(cp.asarray(x))(cp.asarray(np.ones((2, 3), dtype=bool)))


# ------------------------------------------------------------------------------- a real GPU


@pytest.mark.gpu
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 2, 5])
def test_gpu_path_matches_the_cpu(real_cupy, d, dtype, weighted):
    check_gpu_path(real_cupy, input_rng(44 + d), d, dtype, weighted, n=5000, m=3000)


@pytest.mark.gpu
def test_gpu_torch_cuda_tensors(real_cupy):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    rng = input_rng(45)
    x, pts, w = _inputs(rng, 2, 2000, 500, np.float64, True)
    kde = gaussian_kde(torch.from_numpy(x).cuda(), weights=torch.from_numpy(w).cuda())
    out = kde.logpdf(torch.from_numpy(pts).cuda())
    assert isinstance(out, torch.Tensor) and out.is_cuda
    np.testing.assert_allclose(out.cpu().numpy(), gaussian_kde(x, weights=w).logpdf(pts), rtol=RTOL)


@pytest.mark.gpu
def test_gpu_resample_draws_from_the_density(real_cupy):
    cp = real_cupy
    rng = input_rng(46)
    x, _, w = _inputs(rng, 2, 3000, 10, np.float64, True)
    kde = gaussian_kde(cp.asarray(x), weights=cp.asarray(w))
    draws = cp.asnumpy(kde.resample(200_000, seed=3))
    p = w / w.sum()
    mean = x @ p
    cov = (x - mean[:, None]) * p @ (x - mean[:, None]).T + kde.covariance
    np.testing.assert_allclose(draws.mean(axis=1), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(draws), cov, rtol=0.03, atol=0.01)
