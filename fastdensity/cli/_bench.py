"""``fastdensity bench``: the guard's probes and ops on the user's machine.

    fastdensity bench [--quick] [--json FILE] [--compare FILE] [--backend cpu|cuda]
                      [--repeats N] [--threshold T] [--ops NAME,...]

Prints the machine, the probe rates and a table of each op's median time, rate and efficiency
(rate ÷ probe rate); ``--json`` writes the same as JSON (atomically); ``--compare FILE`` compares
the efficiencies with an earlier ``--json`` file (or a committed baseline) and exits 1 when an op
regressed beyond ``--threshold``, after measuring the suspected ops a second time. Exit status 2
for bad options, 1 for a regression or a runtime error (no GPU for ``--backend cuda``, a missing
file).

``bench/guard.py`` (the CI guard) is this command with a committed baseline and ``--update``; the
measurement itself is ``fastdensity._bench``.
"""

from __future__ import annotations

import argparse
import math
import time

from ._argtypes import positive_int

# From the measurements in bench/README.md ("Choosing the threshold"): five runs of unchanged code
# on an idle 2-core machine stayed above 0.909 of the baseline (knn_d16 aside, which has its own
# allowance), and a planted +25 % slowdown measures at about 0.80.
DEFAULT_THRESHOLD = 0.12
DEFAULT_REPEATS = 7
QUICK_REPEATS = 3


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1); got {text!r}") from None
    if not (math.isfinite(value) and 0 < value < 1):
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1); got {text!r}")
    return value


def _ops(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated op names; got {text!r}")
    return names


def _plant(text: str) -> tuple[str, float]:
    name, sep, fraction = text.partition("=")
    try:
        value = float(fraction)
    except ValueError:
        value = float("nan")
    if not sep or not name or not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected OP=FRACTION with FRACTION > 0 (e.g. kde_gaussian_f64_d2=0.25); "
                                         f"got {text!r}")
    return name, value


def add_arguments(parser, *, threads=None, clock="wall") -> None:
    """The options shared by ``fastdensity bench`` and ``bench/guard.py`` (with their defaults)."""
    parser.add_argument("--quick", action="store_true",
                        help="sizes about ten times smaller and fewer repetitions (not comparable with a full run)")
    parser.add_argument("--backend", choices=("cpu", "cuda"), default="cpu",
                        help="cpu: the Numba engines; cuda: the CUDA engines against torch on the same GPU")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--repeats", type=positive_int, default=None, metavar="N",
                        help=f"interleaved repetitions (default: {DEFAULT_REPEATS}, --quick {QUICK_REPEATS})")
    parser.add_argument("--threshold", type=_threshold, default=DEFAULT_THRESHOLD, metavar="T",
                        help=f"relative drop of efficiency that counts as a regression (default: {DEFAULT_THRESHOLD})")
    parser.add_argument("--threads", type=positive_int, default=threads, metavar="N",
                        help="Numba and BLAS threads (default: " + ("all" if threads is None else str(threads)) + ")")
    parser.add_argument("--clock", choices=("wall", "cpu"), default=clock,
                        help="time by elapsed time or by the process's CPU time (robust to other processes; "
                             f"use with --threads 1) (default: {clock})")
    parser.add_argument("--ops", type=_ops, default=None, metavar="NAME,...", help="time only these ops")
    parser.add_argument("--plant", type=_plant, action="append", default=[], metavar="OP=FRACTION",
                        help="plant a slowdown: OP also runs on FRACTION of its rows (to test the guard)")


def add_bench_parser(commands) -> None:
    parser = commands.add_parser(
        "bench", help="time fastdensity's hot ops on this machine against its own floor",
        description="Time the public calls (KDE, kNN, Gaussian mixtures, gaussian_kde, FID, PRDC) against "
                    "an exp-rate and a DGEMM probe timed in the same run, and print throughput and "
                    "efficiency; --compare FILE exits 1 on a regression.")
    add_arguments(parser)
    parser.add_argument("--compare", metavar="FILE", help="compare with an earlier --json FILE; exit 1 on a regression")
    parser.set_defaults(func=cmd_bench, update=None)


def measure_and_report(args, stdout, stderr, *, baseline_path=None, update=False, runs=1) -> int:
    """Run the measurement the options ask for, print it, compare or update; the exit status.
    With ``update``, ``runs`` separate runs are made and the baseline holds each op's median."""
    from .._bench import (check, compare, comparison_table, describe_machine_line, measure, median_of_runs, read_json,
                   result_table, write_json)
    from .._bench._compare import other_cpu

    if args.backend == "cuda":
        from .._backend._cuda import require_cupy

        require_cupy("fastdensity bench --backend cuda")
    if update and args.plant:
        raise ValueError("--update with --plant would write a planted slowdown into the baseline; drop one")
    baseline = None
    if baseline_path is not None and not update:
        baseline = read_json(baseline_path)  # a missing or broken baseline fails before timing
    repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    plant = dict(args.plant)

    def progress(text):
        stderr.write(f"  {text}\n")
        stderr.flush()

    if runs > 1 and not update:
        raise ValueError("--runs combines runs into a baseline; use it with --update")
    start = time.perf_counter()
    results = []
    for run in range(runs):
        if runs > 1:
            progress(f"run {run + 1}/{runs}")
        result, cases, probes = measure(args.backend, quick=args.quick, repeats=repeats, ops=args.ops,
                                        plant=plant, progress=progress, threads=args.threads, clock=args.clock)
        results.append(result)
    if runs > 1:
        result = median_of_runs(results)
    result["threshold"] = args.threshold
    stdout.write(f"fastdensity bench: backend {args.backend}, {result['mode']} sizes, {repeats} repetitions, "
                 f"{result['threads']} thread(s), {result['clock']} clock, commit {result['commit'] or 'unknown'}\n")
    stdout.write(f"machine: {describe_machine_line(result['machine'])}\n\n")
    stdout.write(result_table(result) + "\n")
    failed = False
    elsewhere = other_cpu(result, baseline) if baseline is not None else None
    if elsewhere is not None:
        rows, _ = compare(result, baseline, args.threshold)  # like-with-like checks still apply
        stdout.write(f"\ncompared with {baseline_path} (measured on "
                     f"{describe_machine_line(baseline.get('machine', {}))}):\n")
        stdout.write(comparison_table(rows, args.threshold) + "\n")
        stdout.write(f"NO VERDICT: the baseline comes from another kind of CPU ({elsewhere}); "
                     "efficiencies are comparable only on the same one. Measure a baseline on this "
                     "machine (--json FILE, or bench/guard.py --update) and compare with it.\n")
    elif baseline is not None:
        rows, failed = check(result, baseline, threshold=args.threshold, cases=cases, probes=probes,
                             confirm_repeats=repeats, plant=plant)
        stdout.write(f"\ncompared with {baseline_path} (measured {baseline.get('date')}, commit "
                     f"{baseline.get('commit')}, on {describe_machine_line(baseline.get('machine', {}))}):\n")
        stdout.write(comparison_table(rows, args.threshold) + "\n")
        stdout.write("REGRESSION: an op's efficiency fell beyond the threshold\n" if failed
                     else "no regression\n")
    result["wall_s"] = time.perf_counter() - start
    if args.json:
        write_json(args.json, result)
    if update:
        write_json(baseline_path, result)
        stdout.write(f"\nbaseline written to {baseline_path}\n")
    return 1 if failed else 0


def cmd_bench(args, stdout, stderr) -> int:
    return measure_and_report(args, stdout, stderr, baseline_path=args.compare)
