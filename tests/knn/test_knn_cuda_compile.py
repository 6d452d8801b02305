"""kernels/knn.cu compiles for Hopper with every template instantiation the launcher uses.

Templates are only checked when instantiated, so a wrapper translation unit takes the address of
each name expression of ``fastdensity.knn._knn_cuda.NAME_EXPRESSIONS`` (what CuPy's RawModule
instantiates at run time) and nvcc must compile it without a single warning.
"""

from __future__ import annotations

import shutil
import subprocess
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


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_every_instantiation_compiles_without_warnings(tmp_path):
    addresses = ",\n".join(f"    (void*)&{expr}" for expr in _knn_cuda.NAME_EXPRESSIONS)
    unit = tmp_path / "knn_instances.cu"
    unit.write_text(f'#include "{_knn_cuda.SOURCE}"\nvoid* fastdensity_instances[] = {{\n{addresses}\n}};\n')
    result = subprocess.run(
        ["nvcc", "--ptx", "-arch=sm_90", "-std=c++17", "-Werror", "all-warnings", "-I", str(KERNELS),
         str(unit), "-o", str(tmp_path / "out.ptx")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
    ptx = (tmp_path / "out.ptx").read_text()
    assert ptx.count(".entry") == len(_knn_cuda.NAME_EXPRESSIONS)


@pytest.mark.skipif(cuda_host_emulation.nvrtc_library() is None, reason="libnvrtc not found (FASTDENSITY_NVRTC=path)")
def test_nvrtc_compiles_every_name_expression_as_the_loader_does():
    """What CuPy does at run time, without a GPU: NVRTC, the loader's source text and options."""
    status, log, lowered = cuda_host_emulation.nvrtc_compile(
        cuda_host_emulation.nvrtc_library(), _knn_cuda.SOURCE, _knn_cuda.NAME_EXPRESSIONS)
    assert status == 0, log
    assert all(lowered[name] for name in _knn_cuda.NAME_EXPRESSIONS), lowered
