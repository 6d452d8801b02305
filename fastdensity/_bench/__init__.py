"""Throughput measurement shared by ``bench/guard.py`` (the CI guard) and ``fastdensity bench``.

    result, cases, probes = measure("cpu", repeats=7, threads=1, clock="cpu")
    rows, failed = check(result, baseline, threshold=0.12, cases=cases, probes=probes,
                         confirm_repeats=7)

See ``_probes`` (the machine's reference rates), ``_ops_cpu`` / ``_ops_cuda`` (the public calls
timed), ``_runner`` (interleaved repetitions, medians) and ``_compare`` (the verdict).
"""

from __future__ import annotations

import contextlib

from ._compare import compare, comparison_table, read_json, result_table, suspects, write_json
from ._probes import Probes
from ._runner import describe_machine_line, remeasure, run

BACKENDS = ("cpu", "cuda")


def build_cases(backend: str = "cpu", quick: bool = False, ops=None, progress=None) -> dict:
    """name -> Case for ``backend``, built (data drawn, models fitted, kernels compiled)."""
    if backend == "cpu":
        from ._ops_cpu import CPU_OPS as table
    elif backend == "cuda":
        from ._ops_cuda import cuda_ops

        table = cuda_ops()
    else:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    names = list(table) if ops is None else list(ops)
    unknown = [name for name in names if name not in table]
    if unknown:
        raise ValueError(f"unknown op(s) {unknown}; known: {list(table)}")
    cases = {}
    for name in names:
        if progress is not None:
            progress(f"preparing {name}")
        cases[name] = table[name](quick)
    return cases


@contextlib.contextmanager
def _limited_threads(threads):
    """Numba's and the BLAS's thread counts set to ``threads`` (None: leave them)."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    from .._backend import threads as numba_threads

    with numba_threads(threads), threadpool_limits(limits=threads):
        yield


def measure(backend="cpu", *, quick=False, repeats=7, ops=None, plant=None, progress=None,
            threads=None, clock="wall"):
    """Build the cases and time them on ``threads`` threads (None: all) with ``clock`` ("wall" or
    "cpu"); returns (result, cases, probes) — the last two for a confirmation run under
    :func:`limited_threads`. The result notes backend, mode, threads and clock."""
    if backend == "cuda" and clock != "wall":
        raise ValueError("--backend cuda times with the wall clock (between device synchronisations); "
                         "drop --clock cpu")
    with _limited_threads(threads):
        cases = build_cases(backend, quick, ops, progress)
        if backend == "cuda":
            from ._ops_cuda import CudaProbes

            probes = CudaProbes()
        else:
            probes = Probes(clock=clock)
        result = run(cases, repeats=repeats, probes=probes, plant=plant, progress=progress)
        import numba

        result["threads"] = numba.get_num_threads()
    result["backend"] = backend
    result["mode"] = "quick" if quick else "full"
    return result, cases, probes


limited_threads = _limited_threads


def check(result, baseline, *, threshold, cases, probes, confirm_repeats, plant=None):
    """Compare with ``baseline``; an op below the threshold is measured again and keeps the
    better of its two medians, so that one unlucky stretch of load does not fail the guard while a
    real slowdown, present in both measurements, does. Returns (rows, failed)."""
    compare(result, baseline, threshold)  # mode/backend mismatches fail before any re-timing
    again = suspects(result, baseline, threshold)
    if again and confirm_repeats > 0:
        with _limited_threads(result.get("threads")):
            fresh = remeasure(cases, again, repeats=confirm_repeats, probes=probes, plant=plant)
        for name in again:
            first = result["ops"][name]
            first["first_efficiency"] = first["efficiency"]
            first["second_efficiency"] = fresh[name]["efficiency"]
            first["efficiency"] = max(first["efficiency"], fresh[name]["efficiency"])
    return compare(result, baseline, threshold)


def median_of_runs(results: list[dict]) -> dict:
    """One result from several separate runs of the same ops: each op's time, rate and efficiency
    is the median over the runs (its per-run efficiencies kept in ``run_efficiencies``); the rest
    (probes, machine, commit) is the first run's. A baseline taken from one run inherits that
    run's luck; the median of several does not."""
    import copy
    import statistics

    if not results:
        raise ValueError("no runs to combine")
    names = list(results[0]["ops"])
    for other in results[1:]:
        if list(other["ops"]) != names:
            raise ValueError("the runs timed different ops; combine only runs of the same ops")
    out = copy.deepcopy(results[0])
    for name in names:
        ops = [r["ops"][name] for r in results]
        op = out["ops"][name]
        for key in ("time_s", "rate", "efficiency"):
            op[key] = statistics.median(o[key] for o in ops)
        op["run_efficiencies"] = [o["efficiency"] for o in ops]
    out["runs"] = len(results)
    return out


__all__ = ["BACKENDS", "median_of_runs", "Probes", "build_cases", "check", "compare", "comparison_table",
           "describe_machine_line", "measure", "read_json", "result_table", "write_json"]
