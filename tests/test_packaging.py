"""The distribution: the wheel carries the CUDA sources and the shipped data; the CUDA sources
compile cleanly for Hopper wherever nvcc is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("build")
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = out.glob("fastdensity-*.whl")
    return path


def test_wheel_contains_cuda_sources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = sorted(p.name for p in (ROOT / "kernels").iterdir() if p.suffix in (".cu", ".cuh"))
    assert "common.cuh" in sources
    for name in sources:
        assert f"fastdensity/kernels/{name}" in names


def test_wheel_contains_data_and_entry_point(wheel):
    archive = zipfile.ZipFile(wheel)
    assert "fastdensity/data/old_faithful.csv" in archive.namelist()
    assert "fastdensity/data/digits_cnn.pt" in archive.namelist()  # the FID/IS features for digits
    assert "fastdensity/datasets/_mnist.py" in archive.namelist()
    (entry_points,) = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
    assert "fastdensity = fastdensity.cli:main" in archive.read(entry_points).decode()


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("source", sorted((ROOT / "kernels").glob("*.cu*")), ids=lambda p: p.name)
def test_cuda_source_compiles_for_hopper(source, tmp_path):
    # A header is compiled through a translation unit that includes it.
    if source.suffix == ".cuh":
        unit = tmp_path / "include_only.cu"
        unit.write_text(f'#include "{source.name}"\n')
    else:
        unit = source
    result = subprocess.run(
        ["nvcc", "--ptx", "-arch=sm_90", "-Werror", "all-warnings", "-I", str(ROOT / "kernels"),
         str(unit), "-o", str(tmp_path / "out.ptx")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
