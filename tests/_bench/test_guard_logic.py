"""The throughput guard's logic on a scripted clock: efficiencies, medians, interleaving, the
verdict, the confirmation of a suspected regression, baseline files. No real timing is asserted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastdensity._bench import _runner, check, compare, comparison_table, read_json, write_json
from fastdensity._bench._ops_cpu import Case
from fastdensity._bench._compare import suspects
from fastdensity._bench._runner import run


class ScriptedClock:
    """A clock that only moves when a fake op or probe 'works'."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class FakeProbes:
    """Probes whose rate is scripted; each call costs no clock time."""

    clock = "wall"

    def __init__(self, rates=None):
        self.rates = rates or {"exp": 1e9, "dgemm": 1e10}
        self.calls = []

    def rate(self, kind):
        self.calls.append(kind)
        return self.rates[kind]


@pytest.fixture
def clock(monkeypatch):
    clock = ScriptedClock()
    monkeypatch.setitem(_runner.TIMERS, "wall", clock)
    return clock


def op_case(clock, seconds_per_row, rows=100, work=1e9, probe="exp", log=None, name=None):
    """A case whose call takes ``seconds_per_row`` (a number or a list, one per timed call) per row.
    The runner calls each op once untimed before its timed call: each listed value serves both."""
    schedule = ([v for v in seconds_per_row for _ in range(2)]
                if isinstance(seconds_per_row, (list, tuple)) else None)

    def call(x):
        per_row = schedule.pop(0) if schedule is not None else seconds_per_row
        clock.advance(per_row * x.shape[0])
        if log is not None:
            log.append(name)

    return Case(call, (np.zeros((rows, 1)),), work, "pairs", probe)


def result_with(efficiencies, **extra):
    base = {"mode": "full", "backend": "cpu", "clock": "cpu", "threads": 1}
    base.update(extra)
    base["ops"] = {name: {"efficiency": eff} for name, eff in efficiencies.items()}
    return base


def test_efficiency_is_the_rate_over_the_probe_rate(clock):
    cases = {"a": op_case(clock, 0.002, work=4e8)}  # 0.2 s per call -> 2e9 pairs/s
    result = run(cases, repeats=3, probes=FakeProbes({"exp": 1e9, "dgemm": 1.0}))
    op = result["ops"]["a"]
    assert op["time_s"] == pytest.approx(0.2)
    assert op["rate"] == pytest.approx(2e9)
    assert op["efficiency"] == pytest.approx(2.0)
    assert op["spread"] == pytest.approx(0.0)
    assert result["repeats"] == 3 and result["clock"] == "wall"


def test_the_median_ignores_one_slow_repetition(clock):
    cases = {"a": op_case(clock, [0.001, 0.001, 0.009, 0.001, 0.001], work=1e9)}
    op = run(cases, repeats=5, probes=FakeProbes())["ops"]["a"]
    assert op["time_s"] == pytest.approx(0.1)
    assert op["spread"] == pytest.approx(1 - 1 / 9)  # the slow call shows in the spread, not the median


def test_every_op_is_framed_by_its_probe_and_the_order_rotates(clock):
    log = []
    cases = {name: op_case(clock, 0.001, probe=probe, log=log, name=name)
             for name, probe in (("a", "exp"), ("b", "dgemm"), ("c", "exp"))}
    probes = FakeProbes()
    run(cases, repeats=3, probes=probes)
    assert log[1::2] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # the timed calls
    assert log[0::2] == log[1::2]  # each preceded by an untimed call of the same op
    # two probe calls per op call, of the op's own kind
    kinds = {"a": "exp", "b": "dgemm", "c": "exp"}
    assert probes.calls == [kinds[name] for name in log[1::2] for _ in range(2)]


def test_a_planted_fraction_adds_that_share_of_the_work(clock):
    cases = {"a": op_case(clock, 0.001, rows=200), "b": op_case(clock, 0.001, rows=200)}
    result = run(cases, repeats=2, probes=FakeProbes(), plant={"a": 0.25})
    assert result["ops"]["a"]["time_s"] == pytest.approx(1.25 * result["ops"]["b"]["time_s"])
    assert result["ops"]["a"]["planted"] == 0.25 and result["ops"]["b"]["planted"] is None


def test_run_refuses_unknown_plants_and_no_repetitions(clock):
    cases = {"a": op_case(clock, 0.001)}
    with pytest.raises(ValueError, match=r"unknown op\(s\) \['zzz'\]"):
        run(cases, repeats=1, probes=FakeProbes(), plant={"zzz": 0.5})
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        run(cases, repeats=0, probes=FakeProbes())


@pytest.mark.parametrize("ratio, status", [(1.0, "ok"), (0.881, "ok"), (0.879, "REGRESSION"), (0.5, "REGRESSION"),
                                           (1.7, "ok")])
def test_verdict_at_the_threshold(ratio, status):
    rows, failed = compare(result_with({"a": ratio}), result_with({"a": 1.0}), threshold=0.12)
    assert [row["status"] for row in rows] == [status]
    assert failed is (status == "REGRESSION")
    assert rows[0]["ratio"] == pytest.approx(ratio)


def test_a_missing_op_fails_and_a_new_one_does_not():
    rows, failed = compare(result_with({"b": 1.0}), result_with({"a": 1.0}), threshold=0.12)
    assert failed
    assert {row["op"]: row["status"] for row in rows} == {"a": "MISSING", "b": "new (no baseline)"}
    table = comparison_table(rows, 0.12)
    assert "MISSING" in table and "threshold 12%" in table


@pytest.mark.parametrize("ratio, status", [(0.801, "ok"), (0.799, "REGRESSION")])
def test_an_ops_own_allowance_widens_its_threshold_alone(ratio, status):
    new = result_with({"noisy": ratio, "steady": 0.85})
    new["ops"]["noisy"]["extra_threshold"] = 0.08
    rows, failed = compare(new, result_with({"noisy": 1.0, "steady": 1.0}), threshold=0.12)
    by_op = {row["op"]: row for row in rows}
    assert by_op["noisy"]["status"] == status and by_op["noisy"]["limit"] == pytest.approx(0.80)
    assert by_op["steady"]["status"] == "REGRESSION" and by_op["steady"]["limit"] == pytest.approx(0.88)
    assert failed
    assert suspects(new, result_with({"noisy": 1.0, "steady": 1.0}), 0.12) == (
        ["steady"] if status == "ok" else ["noisy", "steady"])


def test_the_runner_records_each_ops_allowance(clock):
    cases = {"a": op_case(clock, 0.001), "b": op_case(clock, 0.001)}
    cases["b"].extra_threshold = 0.05
    ops = run(cases, repeats=1, probes=FakeProbes())["ops"]
    assert ops["a"]["extra_threshold"] == 0.0 and ops["b"]["extra_threshold"] == 0.05


@pytest.mark.parametrize("key, value", [("mode", "quick"), ("backend", "cuda"), ("clock", "wall"), ("threads", 2)])
def test_unlike_runs_are_not_compared(key, value):
    with pytest.raises(ValueError, match=f"measured with {key}="):
        compare(result_with({"a": 1.0}, **{key: value}), result_with({"a": 1.0}), threshold=0.12)


def test_threshold_must_be_a_fraction():
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\)"):
        compare(result_with({"a": 1.0}), result_with({"a": 1.0}), threshold=1.5)


def _run_and_check(clock, first, second, baseline_eff):
    """One op whose calls take ``first`` seconds per row in the first measurement (3 calls) and
    ``second`` in the confirmation (3 calls); 1e-3 s/row is efficiency 1 at work 1e8 and probe 1e9."""
    case = op_case(clock, [first] * 3 + [second] * 3, rows=100, work=1e8)
    probes = FakeProbes({"exp": 1e9, "dgemm": 1.0})
    result = run({"a": case}, repeats=3, probes=probes)
    result.update(mode="full", backend="cpu", threads=None)
    baseline = {"mode": "full", "backend": "cpu", "clock": "wall", "threads": None,
                "ops": {"a": {"efficiency": baseline_eff}}}
    return result, check(result, baseline, threshold=0.12, cases={"a": case}, probes=probes, confirm_repeats=3)


def test_one_unlucky_measurement_is_not_a_regression(clock):
    result, (rows, failed) = _run_and_check(clock, first=2e-3, second=1e-3, baseline_eff=1.0)
    assert not failed and rows[0]["status"] == "ok"
    op = result["ops"]["a"]
    assert op["first_efficiency"] == pytest.approx(0.5) and op["second_efficiency"] == pytest.approx(1.0)


@pytest.mark.parametrize("slowdown", [1.25, 2.0])
def test_a_slowdown_in_both_measurements_is_a_regression(clock, slowdown):
    _, (rows, failed) = _run_and_check(clock, first=slowdown * 1e-3, second=slowdown * 1e-3, baseline_eff=1.0)
    assert failed and rows[0]["status"] == "REGRESSION"
    assert rows[0]["ratio"] == pytest.approx(1 / slowdown)


def test_no_confirmation_run_without_suspects(clock):
    result, (rows, failed) = _run_and_check(clock, first=1e-3, second=9e-3, baseline_eff=1.0)
    assert not failed and "second_efficiency" not in result["ops"]["a"]


def test_baseline_files_round_trip_and_bad_ones_are_refused(tmp_path):
    path = tmp_path / "sub" / "base.json"
    data = result_with({"a": 2.5})
    write_json(path, data)
    assert read_json(path) == data
    assert not list(path.parent.glob(".*tmp*"))  # written atomically, nothing left over
    with pytest.raises(FileNotFoundError, match="no baseline file"):
        read_json(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a benchmark JSON file"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "noops.json").write_text(json.dumps({"mode": "full"}))
    with pytest.raises(ValueError, match="no 'ops' table"):
        read_json(tmp_path / "noops.json")
    (tmp_path / "zero.json").write_text(json.dumps({"ops": {"a": {"efficiency": 0}}}))
    with pytest.raises(ValueError, match="op 'a' has no positive 'efficiency'"):
        read_json(tmp_path / "zero.json")


@pytest.mark.parametrize("fraction, factor", [(0.25, 1.25), (1.0, 2.0), (2.5, 3.5)])
def test_plants_above_one_add_whole_calls(clock, fraction, factor):
    cases = {"a": op_case(clock, 0.001, rows=200), "b": op_case(clock, 0.001, rows=200)}
    result = run(cases, repeats=1, probes=FakeProbes(), plant={"a": fraction})
    assert result["ops"]["a"]["time_s"] == pytest.approx(factor * result["ops"]["b"]["time_s"])


def test_the_median_of_runs_takes_each_ops_median_and_keeps_the_runs():
    from fastdensity._bench import median_of_runs

    def one(eff_a, eff_b, commit):
        return {"commit": commit, "ops": {"a": {"time_s": 1 / eff_a, "rate": eff_a, "efficiency": eff_a},
                                          "b": {"time_s": 1 / eff_b, "rate": eff_b, "efficiency": eff_b}}}

    combined = median_of_runs([one(1.0, 5.0, "x"), one(3.0, 4.0, "y"), one(2.0, 9.0, "z")])
    assert combined["ops"]["a"]["efficiency"] == 2.0 and combined["ops"]["b"]["efficiency"] == 5.0
    assert combined["ops"]["a"]["time_s"] == pytest.approx(0.5) and combined["ops"]["b"]["rate"] == 5.0
    assert combined["ops"]["a"]["run_efficiencies"] == [1.0, 3.0, 2.0]
    assert combined["runs"] == 3 and combined["commit"] == "x"
    with pytest.raises(ValueError, match="timed different ops"):
        median_of_runs([one(1.0, 1.0, "x"), {"ops": {"a": {}}}])
    with pytest.raises(ValueError, match="no runs"):
        median_of_runs([])
