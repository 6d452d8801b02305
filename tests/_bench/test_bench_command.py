"""``fastdensity bench`` and ``bench/guard.py`` end to end on the quick sizes (one fast op, one
repetition): options, JSON out, --compare's exit status, refusals. No timing is asserted: the
baselines below are made far better or far worse than any machine to force each verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fastdensity.cli import main

ROOT = Path(__file__).resolve().parents[2]
OP = "kde_gaussian_f64_d2"
QUICK = ["bench", "--quick", "--repeats", "1", "--ops", OP]


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """One quick measurement written as JSON (shared by the tests that compare with it)."""
    path = tmp_path_factory.mktemp("bench") / "run.json"
    assert main(QUICK + ["--threads", "1", "--clock", "cpu", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_json_holds_the_run(measured):
    assert measured["mode"] == "quick" and measured["backend"] == "cpu"
    assert measured["threads"] == 1 and measured["clock"] == "cpu"
    op = measured["ops"][OP]
    assert op["efficiency"] > 0 and op["units"] == "pairs/s" and op["probe"] == "exp"
    assert set(measured["probes"]) == {"exp"}
    assert measured["machine"]["logical_cpus"] >= 1


def test_table_on_stdout(capsys):
    assert main(QUICK) == 0
    out = capsys.readouterr().out
    assert "backend cpu, quick sizes, 1 repetitions" in out
    assert OP in out and "efficiency" in out and "exp/s" in out


def _with_efficiency(measured, tmp_path, factor):
    baseline = json.loads(json.dumps(measured))
    baseline["ops"][OP]["efficiency"] *= factor
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline))
    return path


def test_compare_exits_1_on_a_regression(measured, tmp_path, capsys):
    path = _with_efficiency(measured, tmp_path, 1000.0)  # a baseline no machine reaches
    code = main(QUICK + ["--threads", "1", "--clock", "cpu", "--compare", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "REGRESSION" in out and "baseline eff" in out and OP in out


def test_compare_exits_0_without_one(measured, tmp_path, capsys):
    path = _with_efficiency(measured, tmp_path, 1e-3)
    assert main(QUICK + ["--threads", "1", "--clock", "cpu", "--compare", str(path)]) == 0
    assert "no regression" in capsys.readouterr().out


@pytest.mark.parametrize("key, value", [("cpu", "Some Other CPU"), ("vector_isa", ["sse4_2"])])
def test_a_baseline_from_another_kind_of_cpu_gives_no_verdict(measured, tmp_path, capsys, key, value):
    path = _with_efficiency(measured, tmp_path, 1000.0)  # would be a regression on the same CPU
    baseline = json.loads(path.read_text())
    baseline["machine"][key] = value
    path.write_text(json.dumps(baseline))
    code = main(QUICK + ["--threads", "1", "--clock", "cpu", "--compare", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "NO VERDICT: the baseline comes from another kind of CPU" in out and "REGRESSION" in out


def test_the_machine_names_its_vector_extensions(measured):
    from fastdensity._bench._runner import VECTOR_ISA

    isa = measured["machine"]["vector_isa"]
    assert isa is None or set(isa) <= set(VECTOR_ISA)  # None where /proc/cpuinfo is unreadable


def test_compare_refuses_unlike_runs(measured, tmp_path, capsys):
    path = _with_efficiency(measured, tmp_path, 1.0)
    assert main(QUICK + ["--compare", str(path)]) == 1  # all threads, wall clock: not like the file
    assert "measured with clock='cpu'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["bench", "--threshold", "1.5"], "--threshold: expected a number in (0, 1)"),
    (["bench", "--repeats", "0"], "--repeats: expected a positive integer"),
    (["bench", "--backend", "tpu"], "invalid choice: 'tpu'"),
    (["bench", "--plant", "kde"], "expected OP=FRACTION"),
    (["bench", "--ops", ","], "expected comma-separated op names"),
])
def test_bad_options_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_op_and_missing_baseline_exit_1(tmp_path, capsys):
    assert main(["bench", "--quick", "--ops", "nope"]) == 1
    assert "unknown op(s) ['nope']" in capsys.readouterr().err
    assert main(QUICK + ["--compare", str(tmp_path / "absent.json")]) == 1
    assert "no baseline file" in capsys.readouterr().err


def test_cuda_without_cupy_is_one_clear_error(capsys):
    if "cupy" in sys.modules:
        pytest.skip("CuPy is imported here")
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("CuPy is installed")
    assert main(["bench", "--backend", "cuda"]) == 1
    err = capsys.readouterr().err
    assert "fastdensity bench --backend cuda is not available" in err and "pip install" in err


def _guard(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "bench" / "guard.py"), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_guard_update_writes_a_baseline_that_the_next_run_reads(tmp_path):
    path = tmp_path / "base.json"
    done = _guard("--quick", "--repeats", "1", "--ops", OP, "--baseline", str(path), "--update", "--runs", "2")
    assert done.returncode == 0, done.stderr
    baseline = json.loads(path.read_text())
    assert baseline["threads"] == 1 and baseline["clock"] == "cpu" and list(baseline["ops"]) == [OP]
    assert baseline["runs"] == 2 and len(baseline["ops"][OP]["run_efficiencies"]) == 2
    # a 20x planted slowdown against that baseline: caught whatever the machine does
    done = _guard("--quick", "--repeats", "1", "--ops", OP, "--baseline", str(path), "--plant", f"{OP}=19")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REGRESSION" in done.stdout and "planted" in done.stdout


def test_guard_runs_only_combine_into_a_baseline(tmp_path):
    done = _guard("--quick", "--ops", OP, "--runs", "0", "--update", "--baseline", str(tmp_path / "b.json"))
    assert done.returncode == 2 and "--runs: expected a positive integer" in done.stderr


def test_guard_refuses_to_write_a_planted_baseline(tmp_path):
    done = _guard("--quick", "--ops", OP, "--baseline", str(tmp_path / "b.json"), "--update", "--plant", f"{OP}=1")
    assert done.returncode == 1
    assert "would write a planted slowdown into the baseline" in done.stderr
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "bench" / "baselines").glob("cpu*.json")))
def test_committed_baselines_are_readable_and_cover_every_op(name):
    from fastdensity._bench import read_json
    from fastdensity._bench._ops_cpu import CPU_OPS

    baseline = read_json(ROOT / "bench" / "baselines" / name)
    assert baseline["mode"] == "full" and baseline["threads"] == 1 and baseline["clock"] == "cpu"
    assert list(baseline["ops"]) == list(CPU_OPS)
    if name != "cpu.json":  # the legacy file predates the family/model fields
        machine = baseline["machine"]
        assert name == f"cpu-family{machine['cpu_family']}-model{machine['cpu_model']}.json"


def _machine(family, model, cpu="AMD EPYC", isa=("avx2", "avx512f")):
    return {"cpu": cpu, "cpu_family": family, "cpu_model": model, "vector_isa": list(isa)}


def _write_baseline(path, machine):
    from fastdensity._bench._compare import write_json

    write_json(path, {"schema": 1, "machine": machine, "ops": {}})


def test_the_guard_picks_the_baseline_of_this_kind_of_cpu(tmp_path):
    from fastdensity._bench._compare import baseline_for

    legacy = {k: v for k, v in _machine("25", "17").items() if k not in ("cpu_family", "cpu_model")}
    _write_baseline(tmp_path / "cpu.json", legacy)
    _write_baseline(tmp_path / "cpu-family26-model2.json", _machine("26", "2"))
    assert baseline_for(_machine("26", "2"), tmp_path) == tmp_path / "cpu-family26-model2.json"
    # no file of its own: the legacy one (compared on name and extensions, as before)
    assert baseline_for(_machine("25", "17"), tmp_path) == tmp_path / "cpu.json"
    # --update never overwrites another machine's baseline
    assert baseline_for(_machine("25", "17"), tmp_path, for_update=True) == tmp_path / "cpu-family25-model17.json"
    assert baseline_for(_machine("26", "2"), tmp_path, for_update=True) == tmp_path / "cpu-family26-model2.json"
    # same family and model but other vector extensions: not this machine's file
    other_isa = _machine("26", "2", isa=("avx2",))
    assert baseline_for(other_isa, tmp_path) == tmp_path / "cpu.json"
    # without /proc/cpuinfo's family and model (another OS or architecture): the legacy name
    assert baseline_for({"cpu": "arm64"}, tmp_path) == tmp_path / "cpu.json"


def test_another_family_under_the_same_cpu_name_gives_no_verdict():
    from fastdensity._bench._compare import other_cpu

    why = other_cpu({"machine": _machine("26", "2")}, {"machine": _machine("25", "17")})
    assert why == "CPU family '25' in the baseline, '26' here"
    assert other_cpu({"machine": _machine("26", "2")}, {"machine": _machine("26", "2")}) is None
