"""One numbering of the kernels: ``KERNEL_CODES`` in ``fastdensity/kde/_kernels.py`` is what the
Numba engines branch on, what the CUDA launcher passes as a template argument, and what the enum
in ``kernels/kde.cu`` must say. Read from the source text, so it runs without a GPU or nvcc."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastdensity.kde import _kernels
from fastdensity.kde._kernels import COMPACT_CODES, COMPACT_KERNELS, KERNEL_CODES, KERNELS

KDE_CU = Path(__file__).resolve().parents[2] / "kernels" / "kde.cu"
NAMES = [name.upper() for name in KERNELS]


def _cuda_enum() -> dict[str, int]:
    """The enumerators of the enum in kde.cu that names the kernels (GAUSSIAN = 0, ...)."""
    source = KDE_CU.read_text(encoding="utf-8")
    for body in re.findall(r"enum\s*:\s*int\s*\{([^}]*)\}", source):
        pairs = dict((name, int(value)) for name, value in re.findall(r"(\w+)\s*=\s*(-?\d+)", body))
        if "GAUSSIAN" in pairs:
            return pairs
    raise AssertionError(f"no enum naming GAUSSIAN in {KDE_CU}")


def test_the_cuda_enum_has_the_tables_codes():
    assert _cuda_enum() == {name.upper(): code for name, code in KERNEL_CODES.items()}


def test_every_kernel_has_a_distinct_code_and_a_named_constant():
    assert sorted(KERNEL_CODES) == sorted(KERNELS)
    assert sorted(KERNEL_CODES.values()) == list(range(len(KERNELS)))
    for name in NAMES:
        assert getattr(_kernels, name) == KERNEL_CODES[name.lower()]


def test_compact_codes_are_the_compact_kernels():
    assert set(COMPACT_CODES) == {KERNEL_CODES[name] for name in COMPACT_KERNELS}
    assert KERNEL_CODES["gaussian"] not in COMPACT_CODES and KERNEL_CODES["exponential"] not in COMPACT_CODES


@pytest.mark.parametrize("module", ["_kde_cpu", "_kde_cv_cpu", "_kde_metric_cpu", "_kde_cuda"])
def test_no_engine_spells_a_kernel_code_as_a_number(module):
    # The engines compare codes with the table's names, never with literal integers.
    source = (Path(_kernels.__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    assert not re.findall(r"\bcode\s*[!=]=\s*\d", source)
    assert "KERNEL_CODES = {" not in source
