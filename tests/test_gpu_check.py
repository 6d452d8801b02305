"""scripts/gpu-check and its sanitizer driver scripts/gpu_sanitize_launches.py, as far as a CPU allows.

Without a GPU: gpu-check's arguments, its exit before any work (no nvidia-smi, no CuPy, no
device), its step runner (time limits, every step runs after a failure, the summary, the exit
status) on stand-in steps, and the parsing of compute-sanitizer's summaries. The driver: the
kernel names it finds in kernels/*.cu against the launchers' name expressions; that its launches
reach every name expression (a recording stand-in for the compiled kernels: no compiler, seconds);
and its launches run for real in the host emulation (tests/cuda_host_emulation.py), compared with
the CPU engines: kNN in the default run, every kernel in the slow one (about 35 modules of g++).
What only a GPU shows (the compute-sanitizer runs, timings, the 8-minute budget) is not tested here.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cuda_host_emulation

ROOT = Path(__file__).resolve().parents[1]
GPU_CHECK = ROOT / "scripts" / "gpu-check"
DRIVER = ROOT / "scripts" / "gpu_sanitize_launches.py"
needs_gxx = pytest.mark.skipif(not cuda_host_emulation.available(), reason="g++ is not installed")


def _load(path, name):
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gpu_check():
    return _load(GPU_CHECK, "fastdensity_gpu_check")


@pytest.fixture(scope="module")
def driver():
    return _load(DRIVER, "fastdensity_gpu_sanitize_launches")


def _run(args, env=None, timeout=120):
    return subprocess.run([sys.executable, str(GPU_CHECK), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


# ------------------------------------------------------------------ gpu-check: arguments, no GPU
def test_help_prints_usage_and_exits_0():
    result = _run(["--help"])
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("usage: scripts/gpu-check [-h] OUTDIR") and "summary.txt" in result.stdout


def test_the_script_is_executable():
    assert os.access(GPU_CHECK, os.X_OK)
    assert GPU_CHECK.read_text().startswith("#!/usr/bin/env python3\n")


@pytest.mark.parametrize("args,message", [
    ([], "the following arguments are required: OUTDIR"),
    (["README.md"], "OUTDIR README.md exists and is not a folder"),
    (["a", "b"], "unrecognized arguments: b"),
    (["--frobnicate", "out"], "unrecognized arguments: --frobnicate"),
])
def test_bad_arguments_exit_2_with_the_usage(args, message):
    result = _run(args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("usage: scripts/gpu-check") and message in result.stderr
    assert not any((ROOT / name).exists() for name in ("a", "b", "out"))  # nothing created


def _bin_with_fake_nvidia_smi(tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    smi = folder / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: stand-in'\n")
    smi.chmod(0o755)
    return folder


def test_without_nvidia_smi_it_exits_2_at_once_and_writes_nothing(tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    out = tmp_path / "out"
    start = time.monotonic()
    result = _run([str(out)], env=dict(os.environ, PATH=str(empty)))
    assert time.monotonic() - start < 30
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "gpu-check: no NVIDIA GPU: nvidia-smi is not on PATH\n"
    assert not out.exists()


def test_without_cupy_it_exits_2_and_writes_nothing(tmp_path):
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here")
    out = tmp_path / "out"
    path = f"{_bin_with_fake_nvidia_smi(tmp_path)}{os.pathsep}{os.environ.get('PATH', '')}"
    result = _run([str(out)], env=dict(os.environ, PATH=path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("gpu-check: no usable GPU through CuPy")
    assert "No module named 'cupy'" in result.stderr
    assert not out.exists()


def test_with_cupy_but_no_device_it_exits_2_and_writes_nothing(tmp_path):
    fake = tmp_path / "modules" / "cupy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import types\ncuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 0))\n")
    out = tmp_path / "out"
    path = f"{_bin_with_fake_nvidia_smi(tmp_path)}{os.pathsep}{os.environ.get('PATH', '')}"
    result = _run([str(out)], env=dict(os.environ, PATH=path, PYTHONPATH=str(fake.parent)))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "gpu-check: no usable GPU: CuPy sees no CUDA device\n"
    assert not out.exists()


# ------------------------------------------------------------------ gpu-check: the step runner
def test_every_step_runs_after_failures_in_its_time_and_the_summary_says_so(gpu_check, tmp_path, monkeypatch):
    py = sys.executable

    def passing(out, timeout):
        rc, seconds = gpu_check.run([py, "-c", "print('fine')"], out / "a.log", timeout)
        return gpu_check.verdict(rc, seconds, timeout, "one note")

    def failing(out, timeout):
        rc, seconds = gpu_check.run([py, "-c", "raise SystemExit(3)"], out / "b.log", timeout)
        return gpu_check.verdict(rc, seconds, timeout)

    def too_slow(out, timeout):
        rc, seconds = gpu_check.run([py, "-c", "import time; time.sleep(60)"], out / "c.log", timeout)
        return gpu_check.verdict(rc, seconds, timeout)

    def broken(out, timeout):
        raise RuntimeError("a bug in a step")

    def several(out, timeout):
        return [("several-1", gpu_check.verdict(0, 0.5, timeout)),
                ("several-2", gpu_check.verdict(0, 0.5, timeout, "errors=2", ok=False))]

    steps = [("passing", passing), ("failing", failing), ("too-slow", too_slow), ("broken", broken),
             ("several", several), ("last", passing)]
    monkeypatch.setattr(gpu_check, "STEPS", steps)
    monkeypatch.setattr(gpu_check, "BUDGETS", {name: 30 for name, _ in steps} | {"too-slow": 1})
    monkeypatch.setattr(gpu_check, "gpu_problem", lambda: None)
    out = tmp_path / "new" / "out"
    start = time.monotonic()
    assert gpu_check.main([str(out)]) == 1
    assert time.monotonic() - start < 30  # the sleeping step was stopped at its 1 s
    assert (out / "a.log").read_text().endswith("fine\n")
    assert "stopped after 1 s" in (out / "c.log").read_text()
    rows = {line.split()[0]: line for line in (out / "summary.txt").read_text().splitlines()[2:]}
    assert list(rows) == ["passing", "failing", "too-slow", "broken", "several-1", "several-2", "last", "total"]
    assert rows["passing"].split()[1] == "PASS" and rows["passing"].endswith("one note")
    assert rows["failing"].split()[1] == "FAIL" and rows["failing"].endswith("exit 3")
    assert rows["too-slow"].split()[1] == "FAIL" and rows["too-slow"].endswith("timed out at 1 s")
    assert rows["broken"].split()[1] == "FAIL" and "RuntimeError: a bug in a step" in rows["broken"]
    assert rows["several-2"].split()[1] == "FAIL" and rows["several-2"].endswith("errors=2")
    assert rows["last"].split()[1] == "PASS" and rows["total"].split()[1] == "FAIL"

    monkeypatch.setattr(gpu_check, "STEPS", [("passing", passing), ("last", passing)])
    assert gpu_check.main([str(out)]) == 0
    assert (out / "summary.txt").read_text().splitlines()[-1].split()[:2] == ["total", "PASS"]


def test_the_sanitizer_step_runs_each_tool_on_the_driver_and_counts_its_errors(gpu_check, tmp_path, monkeypatch):
    """With a stand-in compute-sanitizer that prints its arguments and a summary (racecheck: one
    error); the plain driver run fails here, as it must without a GPU."""
    fake = tmp_path / "compute-sanitizer"
    fake.write_text('#!/bin/sh\nif [ "$1" = --help ]; then echo "  --padding <n>"; exit 0; fi\n'
                    'echo "args: $*"\nn=0; [ "$2" = racecheck ] && n=1\necho "========= ERROR SUMMARY: $n errors"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("COMPUTE_SANITIZER", str(fake))
    results = dict(gpu_check.step_sanitizer(tmp_path, 60))
    assert list(results) == ["sanitizer-plain"] + [f"sanitizer-{t}" for t in gpu_check.SANITIZER_TOOLS]
    assert results["sanitizer-plain"][0] == "FAIL" and results["sanitizer-plain"][3].startswith("exit 2")
    assert results["sanitizer-memcheck"][0] == "PASS" and results["sanitizer-memcheck"][3] == "errors=0"
    assert results["sanitizer-racecheck"][0] == "FAIL" and results["sanitizer-racecheck"][3] == "errors=1"
    memcheck = (tmp_path / "sanitizer-memcheck.log").read_text()
    assert "--tool memcheck --error-exitcode 1 --padding 64" in memcheck
    assert memcheck.split("args: ")[1].split("\n")[0].endswith("gpu_sanitize_launches.py --no-compare --no-pool")
    assert "--padding" not in (tmp_path / "sanitizer-racecheck.log").read_text()


def test_the_bench_steps_fail_without_a_gpu_and_log_their_commands(gpu_check, tmp_path):
    status, _, _, note = gpu_check.step_bench(tmp_path, 120)
    assert status == "FAIL" and note.startswith("exit 2")
    assert (tmp_path / "bench-gpu.log").read_text().startswith("$ ")
    (tmp_path / "bench-cuda.json").write_text("{}")  # left by an earlier run: must not count
    status, _, _, note = gpu_check.step_fastdensity_bench(tmp_path, 120)
    assert status == "FAIL"
    first = (tmp_path / "bench-cuda.log").read_text().splitlines()[0]
    assert first.endswith(f"bench --backend cuda --json {tmp_path / 'bench-cuda.json'}")


def test_a_missing_program_is_a_failed_command_not_a_crash(gpu_check, tmp_path):
    rc, _ = gpu_check.run(["no-such-program-here"], tmp_path / "x.log", 10)
    assert rc == 127 and "cannot run it" in (tmp_path / "x.log").read_text()


def test_the_budgets_fit_in_eight_minutes(gpu_check):
    assert gpu_check.TOTAL == sum(gpu_check.BUDGETS.values()) <= 8 * 60 - 15
    assert [name for name, _ in gpu_check.STEPS] == list(gpu_check.BUDGETS)


def test_sanitizer_summaries_are_counted(gpu_check):
    assert gpu_check.sanitizer_errors("x\n========= ERROR SUMMARY: 0 errors\n") == 0
    assert gpu_check.sanitizer_errors("========= ERROR SUMMARY: 1 error\n") == 1
    assert gpu_check.sanitizer_errors("========= RACECHECK SUMMARY: 3 hazards displayed (2 errors, 1 warnings)") == 2
    assert gpu_check.sanitizer_errors("Traceback ...\nKilled\n") is None


# ------------------------------------------------------------------ the driver: what it must cover
def test_the_kernel_names_of_the_cu_files_are_the_launchers_names(driver):
    declared = driver.declared_kernels()
    listed = {driver.base_name(n) for names in driver.listed_name_expressions().values() for n in names}
    assert set(declared) == listed
    # the macro-generated profiles, extern "C" kernels and templates with launch bounds are all found
    assert {"kde_logsum_gaussian", "kde_logsum_triweight", "kde_logsum_finish_log", "kde_logsum_slow",
            "knn_topk_tiles", "gmm_reduce_partials"} <= set(declared)
    everything = {n for names in driver.listed_name_expressions().values() for n in names}
    assert driver.coverage_gaps(everything) == []


def test_a_kernel_added_to_a_cu_file_without_a_launch_is_reported(driver, tmp_path):
    for path in (ROOT / "kernels").iterdir():
        (tmp_path / path.name).write_text(path.read_text())
    with open(tmp_path / "knn.cu", "a") as f:
        f.write('\nextern "C" __global__ void knn_new_kernel(double* x) { x[0] = 1.0; }\n'
                "template <typename T>\n__global__ void __launch_bounds__(128)\n    knn_other(T* x) {}\n")
    with open(tmp_path / "kde.cu", "a") as f:
        f.write("\n#define MAKE(NAME, CODE) \\\n    __global__ void NAME(double* x) { x[0] = CODE; }\n"
                "MAKE(kde_logsum_made, 3)\n")
    everything = {n for names in driver.listed_name_expressions().values() for n in names}
    gaps = driver.coverage_gaps(everything, folder=tmp_path)
    assert gaps == [f"declared in kernels/{src} but in no launcher's name expressions: {name}"
                    for name, src in [("kde_logsum_made", "kde.cu"), ("knn_new_kernel", "knn.cu"),
                                      ("knn_other", "knn.cu")]]
    one_short = everything - {"gmm_pass<float, 1, 2>"}
    assert driver.coverage_gaps(one_short) == ["not launched: gmm_pass<float, 1, 2> (mixture.cu)"]


class _RecordingModule:
    """Stands in for ``cupy.RawModule`` without compiling: its kernels launch nothing."""

    def __init__(self, code, options=(), name_expressions=()):
        self.names = tuple(name_expressions)

    def get_function(self, name):
        assert name in self.names
        return type("Kernel", (), {"__call__": lambda self, *a, **k: None})()


def test_the_driver_launches_every_name_expression(driver, monkeypatch):
    """Every listed name expression is asked for and launched by the driver's cases (outputs are
    left NaN, so that the KDE launcher also takes its slow path; nothing is computed)."""
    cuda_host_emulation.fake_cupy(monkeypatch)
    cp = sys.modules["cupy"]
    monkeypatch.setattr(cp, "RawModule", _RecordingModule, raising=False)

    def empty(*args, **kwargs):
        a = np.empty(*args, **kwargs)
        a.fill(np.nan if a.dtype.kind == "f" else 0)
        return a

    monkeypatch.setattr(cp, "empty", empty, raising=False)
    counts, problems = driver.launch_every_kernel(cp, compare=False, out=lambda line: None)
    assert problems == []
    assert driver.coverage_gaps(counts) == []
    assert sum(counts.values()) > len(counts)  # the finish kernels run after each main launch


def test_list_needs_no_gpu(driver, capsys):
    assert driver.main(["--list"]) == 0
    text = capsys.readouterr().out
    assert "kernel kde_logsum_slow (kde.cu)" in text and "kde.cu: 302 name expressions" in text


# ------------------------------------------------------------------ the driver in the host emulation
@needs_gxx
def test_the_driver_main_on_the_knn_kernels_in_the_emulation(driver, monkeypatch, capsys):
    """The driver as gpu-check runs it (``main``), on knn.cu's kernels: all launched, each result
    matching the CPU engine; the coverage line and the exit status."""
    cuda_host_emulation.fake_cupy(monkeypatch, sm_count=4)
    monkeypatch.setattr(sys.modules["cupy"].cuda.runtime, "deviceSynchronize", lambda: None, raising=False)
    assert driver.main(["--only", "knn.cu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("launched 5 of 5 name expressions of the 2 kernels in kernels/{knn.cu}")
    assert lines[-2].endswith("; 0 problems; comparison on")
    assert lines[-1] == "all kernels launched and matching the CPU engine"


@pytest.mark.slow
@needs_gxx
def test_the_driver_launches_every_kernel_in_the_emulation_and_matches_the_cpu(driver, monkeypatch):
    """Every kernel of kernels/*.cu, launched once or more on the CPU through the real launchers
    and loader, each result compared with the CPU engine (about 35 modules of g++: minutes cold,
    seconds once /tmp/fastdensity_cuda_emulation holds them)."""
    cuda_host_emulation.fake_cupy(monkeypatch, sm_count=4)
    lines = []
    counts, problems = driver.launch_every_kernel(sys.modules["cupy"], out=lines.append)
    assert problems == [], "\n".join(problems[:5])
    assert driver.coverage_gaps(counts) == []
    assert len(lines) == 3  # one progress line per source, no FAIL line
