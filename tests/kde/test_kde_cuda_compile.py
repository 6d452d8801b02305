"""kernels/kde.cu compiles with nvcc, warning-free, for every instantiation the launcher can ask for.

Templates are only checked when instantiated, so a wrapper takes the address of each name
expression listed in ``fastdensity.kde._kde_cuda.KDE_NAME_EXPRESSIONS`` (the same tuple the
launcher builds its modules from, so the two cannot drift apart) and nvcc compiles it to PTX for
sm_90 with every warning an error. Skipped where nvcc is absent. Runs without CuPy or a GPU.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fastdensity.kde import _kde_cuda
from fastdensity.kde._kernels import KERNELS

KERNEL_DIR = Path(__file__).resolve().parents[2] / "kernels"
NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")


def _wrapper(names) -> str:
    refs = ",\n".join(f"    reinterpret_cast<void*>(&{name})" for name in names)
    return (
        '#include "kde.cu"\n'
        f"static void* const fastdensity_instantiations[] = {{\n{refs}\n}};\n"
        "void* fastdensity_instantiation(int i) { return fastdensity_instantiations[i]; }\n"
    )


def _compile(tmp_path, names) -> str:
    source = tmp_path / "wrapper.cu"
    source.write_text(_wrapper(names))
    ptx = tmp_path / "wrapper.ptx"
    cmd = [NVCC, "--ptx", "-arch=sm_90", "-std=c++17", "-Werror", "all-warnings", f"-I{KERNEL_DIR}",
           str(source), "-o", str(ptx)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"nvcc failed:\n{result.stdout}\n{result.stderr}"
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    return ptx.read_text()


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
    entries = re.findall(r"\.entry\s+(\S+)\(", ptx)
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


def test_nvrtc_compiles_the_loaders_source_with_every_name_expression_of_a_group():
    # What CuPy's RawModule does on a GPU machine, minus loading the binary: NVRTC (no GPU needed)
    # compiles the text the loader builds, with its options, and lowers every name expression.
    # Skipped where CuPy or the NVRTC library is absent. Uses CuPy's private _NVRTCProgram.
    compiler = pytest.importorskip("cupy.cuda.compiler")
    from fastdensity._backend._cuda import COMPILE_OPTIONS, kernel_source

    code, folder = kernel_source("kde.cu")
    group = _kde_cuda.module_group("gaussian", "float")
    try:
        program = compiler._NVRTCProgram(code, "kde.cu", (), (), name_expressions=list(group), method="ptx")
    except Exception as exc:  # the NVRTC shared library is not installed
        pytest.skip(f"NVRTC is not available: {type(exc).__name__}")
    options = COMPILE_OPTIONS + (f"-I{folder.as_posix()}", "-ftz=true", "-arch=compute_90",
                                 "--device-as-default-execution-space")
    ptx, mapping = program.compile(options)
    assert set(mapping) == set(group)
    text = ptx.decode() if isinstance(ptx, bytes) else ptx
    assert all(mangled in text for mangled in mapping.values())
