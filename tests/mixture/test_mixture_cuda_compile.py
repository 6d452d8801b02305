"""kernels/mixture.cu compiles for Hopper with every template instantiation the launcher uses,
and the launcher's CPU-side pieces (statistics layout, launch plan) are right.

The compile check instantiates every name expression of
``fastdensity.mixture._mixture_cuda.NAME_EXPRESSIONS`` (see ``cuda_host_emulation.nvcc_ptx``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import cuda_host_emulation
import pytest

from random_inputs import input_rng
from fastdensity.mixture import _mixture_cpu as cpu
from fastdensity.mixture import _mixture_cuda as gpu
from fastdensity.mixture._cholesky_dd import precision_cholesky_full

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "kernels"


def test_name_expressions_cover_every_family_mode_and_dtype():
    assert len(set(gpu.NAME_EXPRESSIONS)) == len(gpu.NAME_EXPRESSIONS) == 2 * 3 * 3 + 1
    for cov_type in ("full", "tied", "diag", "spherical"):
        for mode in (gpu.MODE_LOG_PROB, gpu.MODE_NORM, gpu.MODE_ESTEP):
            for dtype in (np.float32, np.float64):
                assert gpu.pass_name(dtype, gpu.FAMILIES[cov_type], mode) in gpu.NAME_EXPRESSIONS


def test_enums_mirror_the_kernel_and_the_cpu_engine():
    text = (KERNELS / gpu.SOURCE).read_text()
    assert "enum Family : int { FULL = 0, TIED = 1, DIAG = 2 };" in text
    assert "enum Mode : int { LOG_PROB = 0, NORM = 1, ESTEP = 2 };" in text
    assert (gpu.FAMILIES["full"], gpu.FAMILIES["tied"], gpu.FAMILIES["diag"]) == (cpu._FULL, cpu._TIED, cpu._DIAG)
    assert (gpu.MODE_LOG_PROB, gpu.MODE_NORM, gpu.MODE_ESTEP) == (cpu.MODE_LOG_PROB, cpu.MODE_NORM, cpu.MODE_ESTEP)


@pytest.mark.skipif(cuda_host_emulation.NVCC is None, reason="nvcc is not installed")
def test_every_instantiation_compiles_without_warnings(tmp_path):
    ptx = cuda_host_emulation.nvcc_ptx(tmp_path, gpu.SOURCE, gpu.NAME_EXPRESSIONS)
    assert len(cuda_host_emulation.ptx_entries(ptx)) == len(gpu.NAME_EXPRESSIONS)


# ------------------------------------------------------------------ CPU-side launcher pieces
def _random_model(rng, d, K, cov_type, offset=0.0):
    """(means, prec_chol, log_weights) in scikit-learn's layouts, with random SPD covariances."""
    means = rng.normal(scale=3.0, size=(K, d)) + offset
    A = rng.normal(size=(K, d, d)) / np.sqrt(d) + np.eye(d)
    cov = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(d)
    if cov_type == "full":
        prec_chol = precision_cholesky_full(cov)[0]
    elif cov_type == "tied":
        prec_chol = precision_cholesky_full(cov[:1])[0][0]
    elif cov_type == "diag":
        prec_chol = 1.0 / np.sqrt(rng.uniform(0.5, 2.0, size=(K, d)))
    else:
        prec_chol = 1.0 / np.sqrt(rng.uniform(0.5, 2.0, size=K))
    log_weights = np.log(rng.dirichlet(np.ones(K)))
    return means, prec_chol, log_weights


def _emulate_estep(X, w, means, prec_chol, log_weights, cov_type, rows):
    """NumPy transcription of gmm_pass<double, FAMILY, ESTEP> + gmm_reduce_partials: tiles of
    ``rows`` rows, the entry decoding of phase 2, per-block partials reduced in block order."""
    n, d = X.shape
    K = means.shape[0]
    family = gpu.FAMILIES[cov_type]
    logdet = {"full": lambda p: np.log(np.diagonal(p, axis1=1, axis2=2)).sum(1),
              "tied": lambda p: np.full(K, np.log(np.diag(p)).sum()),
              "diag": lambda p: np.log(p).sum(1), "spherical": lambda p: d * np.log(p)}[cov_type](prec_chol)
    cst = logdet - 0.5 * d * gpu.LOG_2PI + log_weights
    U = np.repeat(prec_chol[:, None], d, axis=1) if cov_type == "spherical" else prec_chol
    shift = means.mean(0)
    geo = gpu.plan(n, d, K, family, gpu.MODE_ESTEP, 8, 227 * 1024)._replace(rows=rows)
    n_tiles = -(-n // rows)
    per_block = -(-n_tiles // gpu.MAX_BLOCKS)
    ti, tj = np.tril_indices(d)
    P = len(ti)
    partial = np.zeros((-(-n_tiles // per_block), geo.n_entries))
    lpn = np.empty(n)
    for t in range(n_tiles):
        x = X[t * rows:(t + 1) * rows]
        if family == 0:
            y = np.einsum("bci,cij->bcj", x[:, None, :] - means[None], np.triu(U))
        elif family == 1:
            y = ((x - shift) @ np.triu(U))[:, None, :] - ((means - shift) @ U)[None]
        else:
            y = (x[:, None, :] - means[None]) * U[None]
        lp = cst - 0.5 * np.sum(y * y, axis=2)
        mx = lp.max(1, keepdims=True)
        e = np.exp(lp - mx)
        s = e.sum(1, keepdims=True)
        lpn[t * rows:(t + 1) * rows] = (mx + np.log(s))[:, 0]
        r = e * (w[t * rows:(t + 1) * rows, None] / s)  # (nb, K)
        out = partial[t // per_block]
        for ent in range(geo.n_entries):  # the kernel's decoding, entry by entry
            if ent < K:
                out[ent] += r[:, ent].sum()
            elif ent < K + K * d:
                c, i = divmod(ent - K, d)
                out[ent] += np.sum(r[:, c] * (x[:, i] - means[c, i]))
            elif family == 2:
                c, i = divmod(ent - K - K * d, d)
                out[ent] += np.sum(r[:, c] * (x[:, i] - means[c, i]) ** 2)
            else:
                c, p = divmod(ent - K - K * d, P) if family == 0 else (0, ent - K - K * d)
                i, j = ti[p], tj[p]
                m_i, m_j = (means[c, i], means[c, j]) if family == 0 else (shift[i], shift[j])
                weight = r[:, c] if family == 0 else w[t * rows:(t + 1) * rows]
                out[ent] += np.sum(weight * (x[:, i] - m_i) * (x[:, j] - m_j))
    return (lpn,) + gpu.unpack_stats(partial.sum(0), d, K, cov_type)


@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical"])
def test_statistics_layout_matches_the_cpu_engine(cov_type):
    """The kernel's entry layout, decoded by ``unpack_stats``, gives the CPU engine's statistics."""
    rng = input_rng(1)
    n, d, K = 77, 3, 2
    X = rng.normal(scale=2.0, size=(n, d)) + 5.0
    w = rng.uniform(0.5, 2.0, size=n)
    means, prec_chol, log_weights = _random_model(rng, d, K, cov_type, offset=5.0)
    got = _emulate_estep(X, w, means, prec_chol, log_weights, cov_type, rows=32)
    want = cpu.gmm_estep(X, w, means, prec_chol, log_weights, cov_type)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.max(np.abs(b)))


@pytest.mark.parametrize("itemsize", [4, 8])
@pytest.mark.parametrize("cov_type", ["full", "tied", "diag"])
def test_plan_fits_shared_memory_and_covers_the_rows(itemsize, cov_type):
    family = gpu.FAMILIES[cov_type]
    for n, d, K in [(1, 1, 1), (31, 2, 3), (1025, 16, 8), (10**6, 64, 20), (123457, 5, 50)]:
        for mode in (gpu.MODE_LOG_PROB, gpu.MODE_NORM, gpu.MODE_ESTEP):
            geo = gpu.plan(n, d, K, family, mode, itemsize, 227 * 1024)
            assert geo.rows in gpu.ROWS_PER_TILE and geo.rows % 32 == 0
            assert geo.smem == gpu.smem_bytes(itemsize, geo.rows, d, K, family) <= 227 * 1024
            assert geo.blocks * geo.tiles_per_block * geo.rows >= n  # every row is covered
            assert (geo.blocks - 1) * geo.tiles_per_block * geo.rows < n  # no block without rows
            if mode == gpu.MODE_ESTEP:
                assert geo.blocks <= gpu.MAX_BLOCKS
            else:
                assert geo.tiles_per_block == 1


def test_plan_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="backend='cpu'"):
        gpu.plan(100, 2000, 10, gpu.FAMILIES["full"], gpu.MODE_ESTEP, 8, 227 * 1024)


def test_nvrtc_compiles_every_name_expression_as_the_loader_does():
    """What CuPy does at run time, without a GPU: NVRTC, the loader's source text and options."""
    cuda_host_emulation.assert_nvrtc_lowers_every_name(gpu.SOURCE, gpu.NAME_EXPRESSIONS)
