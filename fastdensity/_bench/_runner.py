"""Time the ops against the probes, interleaved, and summarise each op by medians.

One *repetition* times every op once, in an order rotated from one repetition to the next, each
op called once untimed and then framed by a call of its probe just before and just after its
timed call. An op's efficiency in one
repetition is its rate divided by the mean rate of those two probe calls: the probe ran on the
same cores within a fraction of a second of the op, so a load that slows both cancels. The
summary of an op is the median over repetitions (of time, rate and efficiency), and its spread is
(max - min) / median of the efficiencies.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from pathlib import Path

from ._probes import PROBE_UNITS, TIMERS, Probes

SCHEMA = 1


# The vector extensions that change what the compiled kernels can do (and so their efficiency
# against the probes): a baseline holds only on a CPU with the same ones.
VECTOR_ISA = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl")


def machine_description() -> dict:
    """What the numbers were measured on (kept with a baseline, printed with a report)."""
    import numba
    import numpy as np

    model, isa, family_and_model = None, None, {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:  # the first processor's lines; all are alike
                if line.startswith("model name") and model is None:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith(("cpu family", "model\t")) or line.split(":")[0].strip() == "model":
                    # The microarchitecture: one "model name" (say "AMD EPYC") covers several
                    # (families 25 and 26 measured efficiencies 0.73-1.75x apart).
                    key = "cpu_family" if line.startswith("cpu family") else "cpu_model"
                    family_and_model.setdefault(key, line.split(":", 1)[1].strip())
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    isa = [f for f in VECTOR_ISA if f in flags]
                    break
    except OSError:
        pass
    cpu = model or platform.processor() or platform.machine()
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        layer = "not yet chosen"
    return {
        "cpu": cpu,
        **family_and_model,
        "vector_isa": isa,
        "logical_cpus": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "threading_layer": layer,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
    }


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _time_once(fn, clock: str) -> float:
    timer = TIMERS[clock]
    start = timer()
    fn()
    return max(timer() - start, 1e-9)


def run(cases: dict, *, repeats: int, probes: Probes | None = None, plant: dict | None = None,
        progress=None, warm: bool = True) -> dict:
    """Time ``cases`` (name -> Case) ``repeats`` times, interleaved; return the summary dict.

    ``plant`` maps an op name to a fraction: that op's call also runs on that fraction of its rows
    (a planted slowdown, to show that the guard catches it). ``progress(text)`` is told each
    repetition. ``warm`` calls each op once, untimed, right before its timed call: without it an
    op's time depended on which op ran before it (FID at d = 256 measured 0.66-0.85 of its
    baseline among the other ops and 1.28-1.37 alone, on a quiet machine; its large arrays met
    the allocator in whatever state the previous op left).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    plant = dict(plant or {})
    unknown = sorted(set(plant) - set(cases))
    if unknown:
        raise ValueError(f"cannot plant a slowdown in unknown op(s) {unknown}; known: {sorted(cases)}")
    probes = probes or Probes()
    names = list(cases)
    calls = {name: (cases[name].planted(plant[name]) if name in plant else cases[name]) for name in names}
    samples = {name: {"time": [], "eff": [], "probe": []} for name in names}
    probe_rates = {kind: [] for kind in PROBE_UNITS}
    for rep in range(repeats):
        if progress is not None:
            progress(f"repetition {rep + 1}/{repeats}")
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            case = cases[name]
            if warm:
                calls[name]()  # untimed: caches and the allocator in this op's own state
            before = probes.rate(case.probe)
            elapsed = _time_once(calls[name], probes.clock)
            after = probes.rate(case.probe)
            probe = 0.5 * (before + after)
            probe_rates[case.probe] += [before, after]
            samples[name]["time"].append(elapsed)
            samples[name]["probe"].append(probe)
            samples[name]["eff"].append(case.work / elapsed / probe)
    ops = {}
    for name in names:
        case, s = cases[name], samples[name]
        eff = statistics.median(s["eff"])
        t = statistics.median(s["time"])
        ops[name] = {
            "time_s": t,
            "rate": case.work / t,
            "units": f"{case.units}/s",
            "probe": case.probe,
            "efficiency": eff,
            "spread": (max(s["eff"]) - min(s["eff"])) / eff if eff > 0 else float("nan"),
            "planted": plant.get(name),
            "extra_threshold": case.extra_threshold,
        }
    return {
        "schema": SCHEMA,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine_description(),
        "repeats": repeats,
        "clock": probes.clock,
        "probes": {kind: {"rate": statistics.median(r), "units": PROBE_UNITS[kind]}
                   for kind, r in probe_rates.items() if r},
        "ops": ops,
    }


def remeasure(cases: dict, names, *, repeats: int, probes: Probes, plant=None) -> dict:
    """A fresh measurement of only ``names`` (the confirmation of a suspected regression)."""
    subset = {name: cases[name] for name in names}
    sub_plant = {k: v for k, v in (plant or {}).items() if k in subset}
    return run(subset, repeats=repeats, probes=probes, plant=sub_plant)["ops"]


def describe_machine_line(machine: dict) -> str:
    isa = machine.get("vector_isa") or []
    widest = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in isa), None)
    return (f"{machine.get('cpu')}{', ' + widest if widest else ''}, {machine.get('logical_cpus')} logical CPUs, "
            f"{machine.get('numba_threads')} Numba threads ({machine.get('threading_layer')}), "
            f"Python {machine.get('python')}, NumPy {machine.get('numpy')}, Numba {machine.get('numba')}")
