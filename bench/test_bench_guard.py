"""The throughput guard's ops as pytest-benchmark suites (the same cases as ``bench/guard.py``).

    pytest bench/test_bench_guard.py --benchmark-json guard.json   # extra_info: efficiency, probe rate
    FASTDENSITY_BENCH_QUICK=1 pytest bench --benchmark-disable      # CI: every body once

Each op's rate is divided by its probe (``fastdensity/_bench/_probes.py``) timed just before and
after the rounds; ``extra_info["efficiency"]`` is the number ``bench/guard.py`` compares with its
baseline. These suites time all threads by the wall clock, as a user sees it; the guard itself uses
one thread and the CPU clock (bench/README.md). Measurements, not assertions.
"""

from __future__ import annotations

import os

import pytest

from fastdensity._bench._ops_cpu import CPU_OPS
from fastdensity._bench._probes import Probes

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("FASTDENSITY_BENCH_QUICK", "") not in ("", "0")


@pytest.fixture(scope="module")
def probes():
    return Probes(clock="wall")


@pytest.mark.parametrize("name", list(CPU_OPS))
def test_guard_op(benchmark, probes, name):
    case = CPU_OPS[name](QUICK)
    before = probes.rate(case.probe)
    benchmark.pedantic(case, rounds=1 if QUICK else 5, iterations=1)
    probe_rate = 0.5 * (before + probes.rate(case.probe))
    benchmark.extra_info.update(op=name, work=case.work, units=case.units, probe=case.probe,
                                probe_rate=probe_rate)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None with --benchmark-disable
        benchmark.extra_info["efficiency"] = case.work / stats.stats.median / probe_rate
