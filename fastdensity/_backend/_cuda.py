"""The CUDA module loader: CuPy ``RawModule`` objects built from the sources in ``kernels/``.

Importing this module imports nothing optional; CuPy is imported inside the functions. A source
file is read from the source tree (``<repo>/kernels``) or, inside an installed wheel, from
``fastdensity/kernels`` (pyproject's force-include), prefixed with ``#line 1 "<path>"`` so that
compiler errors point at the ``.cu`` file, and compiled by NVRTC with ``name_expressions`` for the
template instantiations a launcher uses. CuPy caches the compiled binaries on disk (keyed by the
source, the options and the name expressions); the module objects are memoised here per device.

API (shared by the KDE, kNN and mixture launchers)::

    require_cupy(feature) -> cupy module        # or CudaUnavailableError saying how to install
    get_function(source_file, name_expression, all_name_expressions) -> cupy.RawKernel
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

INSTALL_HINT = (
    "install CuPy for your CUDA version with `pip install fastdensity[cuda12]` or "
    "`pip install fastdensity[cuda13]`"
)


class CudaUnavailableError(ImportError, NotImplementedError):
    """CUDA was asked for but CuPy or a usable GPU is missing.

    An ``ImportError`` (something is not installed) and, for code written against earlier versions
    in which ``backend="cuda"`` raised ``NotImplementedError``, also one of those.
    """


def require_cupy(feature: str = "backend='cuda'", alternative: str = "backend='cpu'"):
    """Return the ``cupy`` module, or raise :class:`CudaUnavailableError` naming ``feature``, how to
    install CuPy and the ``alternative`` (the command line names its own option).

    Never prints; a missing driver or device is reported the same way as a missing CuPy.
    """
    try:
        import cupy
    except ImportError as exc:
        raise CudaUnavailableError(
            f"{feature} is not available: CuPy is not installed ({exc}); {INSTALL_HINT}, "
            f"or use {alternative}" + (" (move GPU data to the host yourself first)" if alternative == "backend='cpu'" else "")
        ) from None
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError (no driver, old driver), or a stand-in cupy module
        raise CudaUnavailableError(
            f"{feature} is not available: CuPy is installed but found no usable CUDA GPU "
            f"({type(exc).__name__}: {exc}); check the NVIDIA driver, or {INSTALL_HINT} to match it, "
            f"or use {alternative}"
        ) from None
    if count < 1:
        raise CudaUnavailableError(
            f"{feature} is not available: CuPy is installed but this machine has no CUDA GPU; "
            f"use {alternative}"
        )
    return cupy


def kernel_dir() -> Path:
    """The folder that holds the ``.cu`` sources (source tree first, then the installed package)."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "kernels", here.parents[1] / "kernels"):
        if (candidate / "common.cuh").is_file():
            return candidate
    raise FileNotFoundError(
        f"the CUDA kernel sources were not found next to {here.parents[1]} (looked for kernels/ in the "
        "source tree and fastdensity/kernels/ in the installed package); reinstall fastdensity"
    )


def kernel_source(source_file: str) -> tuple[str, Path]:
    """The text of ``kernels/<source_file>`` with a ``#line`` directive, and the folder it is in."""
    folder = kernel_dir()
    path = folder / source_file
    text = path.read_text(encoding="utf-8")
    return f'#line 1 "{path.as_posix()}"\n{text}', folder


COMPILE_OPTIONS = ("-std=c++17",)


@lru_cache(maxsize=None)
def _module(source_file: str, name_expressions: tuple[str, ...], device_id: int):
    cupy = sys.modules["cupy"]
    code, folder = kernel_source(source_file)
    return cupy.RawModule(
        code=code,
        options=COMPILE_OPTIONS + (f"-I{folder.as_posix()}",),
        name_expressions=list(name_expressions),
    )


def get_function(source_file: str, name_expression: str, all_name_expressions: tuple[str, ...]):
    """The compiled kernel ``name_expression`` from ``kernels/<source_file>`` on the current device.

    ``all_name_expressions`` is the group compiled together into one module (one NVRTC run, cached
    on disk by CuPy); it must contain ``name_expression``. Launchers pass a small group per call
    shape (e.g. one kernel profile and dtype) so that a first call compiles only what it needs.
    """
    if name_expression not in all_name_expressions:
        raise ValueError(f"{name_expression!r} is not among the module's name expressions")
    cupy = require_cupy("the CUDA kernels")
    device_id = int(cupy.cuda.runtime.getDevice())
    module = _module(source_file, tuple(all_name_expressions), device_id)
    return module.get_function(name_expression)


def multiprocessor_count() -> int:
    """Streaming multiprocessors of the current device (for launch geometry)."""
    cupy = require_cupy("the CUDA kernels")
    return int(_device_properties(int(cupy.cuda.runtime.getDevice()))["multiProcessorCount"])


@lru_cache(maxsize=None)
def _device_properties(device_id: int) -> dict:
    cupy = sys.modules["cupy"]
    return cupy.cuda.runtime.getDeviceProperties(device_id)
