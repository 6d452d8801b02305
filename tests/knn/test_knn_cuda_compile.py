"""kernels/knn.cu compiles for Hopper, warning-free, with every template instantiation the launcher
uses (``fastdensity.knn._knn_cuda.NAME_EXPRESSIONS``; see ``cuda_host_emulation.nvcc_ptx``)."""

from __future__ import annotations

from pathlib import Path

import cuda_host_emulation
import pytest

from fastdensity.knn import _knn_cuda

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "kernels"


def test_name_expressions_cover_every_kernel_variant():
    assert len(set(_knn_cuda.NAME_EXPRESSIONS)) == len(_knn_cuda.NAME_EXPRESSIONS) == 5
    text = (KERNELS / _knn_cuda.SOURCE).read_text()
    for expr in _knn_cuda.NAME_EXPRESSIONS:
        assert f"void {expr.split('<')[0]}(" in text


def test_launcher_constants_mirror_the_kernel():
    text = (KERNELS / _knn_cuda.SOURCE).read_text()
    assert f"QPW = {_knn_cuda.QPW}," in text
    assert "TILE = 32 * RPL," in text and "RPL = 4," in text and _knn_cuda.TILE == 32 * 4
    assert f"DC = {_knn_cuda.DC}," in text


@pytest.mark.skipif(cuda_host_emulation.NVCC is None, reason="nvcc is not installed")
def test_every_instantiation_compiles_without_warnings(tmp_path):
    ptx = cuda_host_emulation.nvcc_ptx(tmp_path, _knn_cuda.SOURCE, _knn_cuda.NAME_EXPRESSIONS)
    assert len(cuda_host_emulation.ptx_entries(ptx)) == len(_knn_cuda.NAME_EXPRESSIONS)


def test_nvrtc_compiles_every_name_expression_as_the_loader_does():
    """What CuPy does at run time, without a GPU: NVRTC, the loader's source text and options."""
    cuda_host_emulation.assert_nvrtc_lowers_every_name(_knn_cuda.SOURCE, _knn_cuda.NAME_EXPRESSIONS)
