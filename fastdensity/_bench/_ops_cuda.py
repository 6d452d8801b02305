"""``fastdensity bench --backend cuda``: the CUDA engines through the public calls, next to torch on
the same card, with the card's own probes.

Not yet run on a GPU (no GPU was available where this was written): the code path that needs no
GPU (the clear error without CuPy) is tested; everything below ``require_cupy`` is unverified.

Probes (GPU):

* ``exp``: a raw kernel whose threads each evaluate a chain of ``__expf`` in registers (the
  special-function unit's rate, the floor of the exact Gaussian KDE on the card);
* ``dgemm``: a float32 matrix product through cuBLAS (``cupy.matmul``; the floor of the
  distance-bound work). The name is kept so that JSON files of both backends read alike.

Each case synchronises the device at the end of its call, so the host timer sees the kernel time.
Rows named ``torch_*`` are the torch references (chunked ``cdist`` + ``logsumexp`` / ``topk``, a
vectorised E-step) timed the same way; the table prints each fastdensity op's ratio to its torch row.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from ._ops_cpu import Case

_EXP_PROBE = r"""
extern "C" __global__ void fd_probe_exp_chain(float* out, int n_iter) {
    float x = -1e-3f * (threadIdx.x + 1), acc = 0.0f;
    for (int i = 0; i < n_iter; ++i) {
        acc += __expf(x);
        x -= 1e-7f;
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}
"""


class CudaProbes:
    """The card's exp and matrix-product rates (same interface as ``_probes.Probes``)."""

    def __init__(self, target_s: float = 0.05):
        import cupy as cp

        self.cp = cp
        self.target_s = float(target_s)
        self.clock = "wall"  # host wall time between device synchronisations
        self._kernel = cp.RawKernel(_EXP_PROBE, "fd_probe_exp_chain")
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.runtime.getDevice())
        self._blocks = int(props["multiProcessorCount"]) * 8
        self._out = cp.empty(self._blocks * 256, dtype=cp.float32)
        self._a = cp.random.standard_normal((4096, 4096), dtype=cp.float32)
        self._iters = self._calibrate(self._time_exp, 1024)
        self._reps = self._calibrate(self._time_gemm, 1)

    def _sync_time(self, fn):
        self.cp.cuda.Device().synchronize()
        start = time.perf_counter()
        fn()
        self.cp.cuda.Device().synchronize()
        return time.perf_counter() - start

    def _time_exp(self, n_iter):
        return self._sync_time(lambda: self._kernel((self._blocks,), (256,), (self._out, np.int32(n_iter))))

    def _time_gemm(self, reps):
        def gemm():
            for _ in range(reps):
                self.cp.matmul(self._a, self._a)

        return self._sync_time(gemm)

    def _calibrate(self, timed, units):
        timed(units)
        while timed(units) < self.target_s / 4 and units < 1 << 30:
            units *= 2
        elapsed = timed(units)
        return max(1, int(units * self.target_s / max(elapsed, 1e-9)))

    def rate(self, kind: str) -> float:
        if kind == "exp":
            return self._blocks * 256 * self._iters / self._time_exp(self._iters)
        if kind == "dgemm":
            return self._reps * 2.0 * 4096**3 / self._time_gemm(self._reps)
        raise ValueError(f"unknown probe {kind!r}; expected 'exp' or 'dgemm'")


def _synced(cp, fn):
    def call(*args):
        result = fn(*args)
        cp.cuda.Device().synchronize()
        return result

    return call


def _kde(d, quick):
    import cupy as cp

    import fastdensity as fd

    n = m = (1 << 14) if quick else (1 << 16)
    rng = np.random.default_rng(11)
    X = cp.asarray(rng.standard_normal((n, d)), dtype=cp.float32)
    Q = cp.asarray(rng.standard_normal((m, d)), dtype=cp.float32)
    kde = fd.KernelDensity(bandwidth=float(n ** (-1.0 / (d + 4)))).fit(X)
    kde.score_samples(Q[:256])
    return Case(_synced(cp, kde.score_samples), (Q,), float(n) * m, "pairs", "exp")


def _torch_kde(d, quick):
    import cupy as cp
    import torch

    n = m = (1 << 14) if quick else (1 << 16)
    rng = np.random.default_rng(11)
    X = torch.as_tensor(rng.standard_normal((n, d)), dtype=torch.float32, device="cuda")
    Q = torch.as_tensor(rng.standard_normal((m, d)), dtype=torch.float32, device="cuda")
    h = float(n ** (-1.0 / (d + 4)))
    chunk = max(1, (1 << 28) // n)

    def torch_kde(queries):
        out = []
        for s in range(0, queries.shape[0], chunk):
            d2 = torch.cdist(queries[s:s + chunk] / h, X / h).square_()
            out.append(torch.logsumexp(-0.5 * d2, dim=1))
        return torch.cat(out)

    return Case(_synced(cp, torch_kde), (Q,), float(n) * m, "pairs", "exp")


def _knn(d, quick):
    import cupy as cp

    import fastdensity as fd

    n = m = (1 << 14) if quick else (1 << 16)
    rng = np.random.default_rng(12)
    X = cp.asarray(rng.standard_normal((n, d)), dtype=cp.float32)
    Q = cp.asarray(rng.standard_normal((m, d)), dtype=cp.float32)
    knn = fd.KNNDensity(n_neighbors=10).fit(X)
    knn.score_samples(Q[:256])
    return Case(_synced(cp, knn.score_samples), (Q,), float(n) * m, "pairs", "dgemm")


def _torch_knn(d, quick):
    import cupy as cp
    import torch

    n = m = (1 << 14) if quick else (1 << 16)
    rng = np.random.default_rng(12)
    X = torch.as_tensor(rng.standard_normal((n, d)), dtype=torch.float32, device="cuda")
    Q = torch.as_tensor(rng.standard_normal((m, d)), dtype=torch.float32, device="cuda")
    chunk = max(1, (1 << 28) // n)

    def torch_knn(queries):
        for s in range(0, queries.shape[0], chunk):
            torch.topk(torch.cdist(queries[s:s + chunk], X), 10, dim=1, largest=False, sorted=True)

    return Case(_synced(cp, torch_knn), (Q,), float(n) * m, "pairs", "dgemm")


def _gmm_data(quick, d=16, k=16):
    rng = np.random.default_rng(13)
    n = (1 << 17) if quick else (1 << 20)
    centres = rng.standard_normal((k, d)) * 4.0
    return centres[rng.integers(0, k, size=n)] + rng.standard_normal((n, d)), k


def _gmm_fit(quick):
    import cupy as cp

    import fastdensity as fd

    X_host, k = _gmm_data(quick)
    X = cp.asarray(X_host)
    iterations = 10

    def fit(data):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fd.GaussianMixture(n_components=k, max_iter=iterations, tol=0.0, random_state=0).fit(data)

    fit(X[:4096])
    return Case(_synced(cp, fit), (X,), float(X.shape[0]) * k * iterations, "row-components", "dgemm")


def _torch_em(quick):
    import cupy as cp
    import torch

    X_host, k = _gmm_data(quick)
    X = torch.as_tensor(X_host, device="cuda")
    n, d = X.shape
    rng = np.random.default_rng(14)
    means = X[torch.as_tensor(rng.choice(n, k, replace=False), device="cuda")].clone()
    iterations = 10

    def em(data):
        # The textbook vectorised EM in torch: E-step by Cholesky factors, M-step from responsibilities.
        mu = means.clone()
        cov = torch.eye(d, dtype=data.dtype, device=data.device).expand(k, d, d).clone()
        log_w = torch.full((k,), -math.log(k), dtype=data.dtype, device=data.device)
        for _ in range(iterations):
            chol = torch.linalg.cholesky(cov)
            diff = data[None, :, :] - mu[:, None, :]
            y = torch.linalg.solve_triangular(chol, diff.transpose(1, 2), upper=False)
            log_det = torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(dim=1)
            log_prob = (-0.5 * (d * math.log(2 * math.pi) + y.square().sum(dim=1))
                        - log_det[:, None] + log_w[:, None])
            resp = torch.softmax(log_prob, dim=0)
            nk = resp.sum(dim=1) + 1e-10
            mu = resp @ data / nk[:, None]
            diff = data[None, :, :] - mu[:, None, :]
            cov = torch.einsum("kn,knd,kne->kde", resp, diff, diff) / nk[:, None, None]
            cov = cov + 1e-6 * torch.eye(d, dtype=data.dtype, device=data.device)
            log_w = torch.log(nk / n)
        return mu

    return Case(_synced(cp, em), (X,), float(n) * k * iterations, "row-components", "dgemm")


def cuda_ops() -> dict:
    """name -> builder(quick) -> Case, for the CUDA engines and their torch references."""
    from .._backend._cuda import require_cupy

    require_cupy("fastdensity bench --backend cuda")
    ops = {
        "kde_gaussian_f32_d2": lambda q: _kde(2, q),
        "kde_gaussian_f32_d16": lambda q: _kde(16, q),
        "knn_f32_d16": lambda q: _knn(16, q),
        "gmm_fit_full_f64": _gmm_fit,
    }
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        ops.update({
            "torch_kde_gaussian_f32_d2": lambda q: _torch_kde(2, q),
            "torch_kde_gaussian_f32_d16": lambda q: _torch_kde(16, q),
            "torch_knn_f32_d16": lambda q: _torch_knn(16, q),
            "torch_gmm_fit_full_f64": _torch_em,
        })
    return ops
