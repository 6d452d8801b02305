"""kernels/kde.cu compiles with nvcc, warning-free, for every instantiation the launcher can ask for.

Templates are only checked when instantiated, so a wrapper takes the address of each name
expression listed in ``fastdensity.kde._kde_cuda.KDE_NAME_EXPRESSIONS`` (the same tuple the
launcher builds its modules from, so the two cannot drift apart) and nvcc compiles it to PTX for
sm_90 with every warning an error. Skipped where nvcc is absent. Runs without CuPy or a GPU.
"""

from __future__ import annotations

import cuda_host_emulation
import pytest

from fastdensity.kde import _kde_cuda
from fastdensity.kde._kernels import KERNELS

needs_nvcc = pytest.mark.skipif(cuda_host_emulation.NVCC is None, reason="nvcc is not installed")


def _compile(tmp_path, names) -> str:
    return cuda_host_emulation.nvcc_ptx(tmp_path, _kde_cuda.SOURCE, names)


# One log kernel and one compact kernel by default (every code path of kde.cu, ~10 s each); the
# other profiles differ only in their profile function and run with the slow tests.
_DEFAULT = ("gaussian", "epanechnikov")


@needs_nvcc
@pytest.mark.parametrize(
    "kernel", [k if k in _DEFAULT else pytest.param(k, marks=pytest.mark.slow) for k in KERNELS]
)
def test_every_instantiation_of_a_kernel_profile_compiles(tmp_path, kernel):
    names = tuple(dict.fromkeys(
        name for ctype in ("float", "double") for name in _kde_cuda.module_group(kernel, ctype)
    ))
    ptx = _compile(tmp_path, names)
    entries = cuda_host_emulation.ptx_entries(ptx)
    # One PTX entry per distinct name expression: nothing silently dropped or merged.
    assert len(set(entries)) == len(names), (len(set(entries)), len(names))
    assert any(f"kde_logsum_{kernel}" in e for e in entries)


def test_name_expressions_cover_every_group_and_nothing_else():
    groups = {
        name for kernel in KERNELS for ctype in ("float", "double") for name in _kde_cuda.module_group(kernel, ctype)
    }
    assert set(_kde_cuda.KDE_NAME_EXPRESSIONS) == groups
    assert len(_kde_cuda.KDE_NAME_EXPRESSIONS) == len(set(_kde_cuda.KDE_NAME_EXPRESSIONS))
    # Every dimension the launcher can pick is compiled, for both dtypes and both adaptive modes.
    for d in (1, 2, 5, 7, 13, 16, 17, 300):
        D = _kde_cuda._compiled_d(d)
        assert D == 0 or D >= d
        for ctype in ("float", "double"):
            for adaptive in (False, True):
                assert _kde_cuda.main_name("cosine", ctype, D, adaptive) in groups


@needs_nvcc
def test_a_broken_instantiation_is_reported(tmp_path):
    # The check can fail: a name expression the source does not define must not compile.
    with pytest.raises(AssertionError, match="nvcc failed"):
        _compile(tmp_path, ("kde_logsum_gaussian<float, 5, false>", "kde_logsum_nonexistent<float, 1, false>"))


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_nvrtc_compiles_the_loaders_source_with_every_name_expression_of_a_group(kernel):
    """What CuPy's RawModule does on a GPU machine, minus loading the binary: NVRTC (no GPU needed)
    compiles the text the loader builds, with its options, and lowers every name expression."""
    group = tuple(_kde_cuda.module_group(kernel, "float"))
    cuda_host_emulation.assert_nvrtc_lowers_every_name(_kde_cuda.SOURCE, group)
