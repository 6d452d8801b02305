"""Time and peak memory of ``fastdensity.metrics.prdc`` against the ``prdc`` package.

    python bench/compare_metrics.py [--sizes 10000 20000] [--dim 64] [--k 5] [--repeats 3]

For each N, real features ~ N(0, I) and fake features ~ N(0.1, 1.1² I) (N × d each, float64).
Each library runs in its own fresh process (``--worker``), so that peak memory is its own: the
peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs`` before the call) minus the
resident set just before the call, i.e. what the computation adds to the data. Time is the
median wall time (and process CPU time, all threads) over ``--repeats`` calls (fastdensity is
called once on a small input first, so that Numba compilation is not counted). Both use every
core: ``prdc`` through scikit-learn's ``pairwise_distances(n_jobs=8)``, fastdensity through
Numba threads (one BLAS thread each). The four numbers of both are printed and compared (they
must be equal).

Measured on the project's 2-core Xeon (AVX-512, 23 GB) on 2026-11-24 while 5 other jobs ran
(load average 11-36, so wall times are inflated and noisy; CPU time is the steadier figure),
d = 64, k = 5, median of 3 calls (``prdc`` at 20,000: 1 call); results identical in every row::

    N        library       wall [s]  CPU [s]  peak extra memory [MiB]
    all cores (2):
    10,000   fastdensity      2.2      1.3        51
    10,000   prdc            20.5      7.4      1552
    20,000   fastdensity     11.3      4.5       102
    20,000   prdc            83.9     38.0      6153
    one thread (OMP/OpenBLAS/Numba = 1):
    10,000   fastdensity      2.9      1.2        51
    10,000   prdc            19.7      8.5      1569

"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _rss_kib(field):
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _data(n, d, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((n, d)) * 1.1 + 0.1


def worker(library, n, d, k, repeats, seed):
    sys.path.insert(0, ROOT)
    real, fake = _data(n, d, seed)
    if library == "fastdensity":
        from fastdensity.metrics import prdc

        prdc(real[:100], fake[:100], nearest_k=k)  # compile (or load the cache) outside the timing

        def call():
            return prdc(real, fake, nearest_k=k)
    else:
        import prdc as prdc_package

        def call():
            with contextlib.redirect_stdout(io.StringIO()):
                return {key: float(v) for key, v in prdc_package.compute_prdc(real, fake, k).items()}

    times = []
    cpu = []
    peak = 0
    result = None
    for _ in range(repeats):
        reset = _reset_peak()
        before = _rss_kib("VmRSS")
        t0, c0 = time.perf_counter(), time.process_time()
        result = call()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        peak = max(peak, _rss_kib("VmHWM") - before if reset else -1)
    return {"times": times, "cpu": cpu, "peak_extra_kib": peak, "result": result}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--package-repeats-above", type=int, default=15_000,
                        help="N above which prdc is called once (it needs minutes and GBs)")
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.worker:
        out = worker(args.worker[0], int(args.worker[1]), args.dim, args.k, args.repeats, args.seed)
        sys.stdout.write(json.dumps(out) + "\n")
        return 0
    print(f"prdc vs fastdensity.metrics.prdc, d = {args.dim}, k = {args.k}, cores = {os.cpu_count()}")
    print(f"{'N':>8}  {'library':<12} {'wall [s]':>9} {'CPU [s]':>8} {'peak extra [MiB]':>17}  result")
    for n in args.sizes:
        results = {}
        for library in ("fastdensity", "prdc"):
            repeats = 1 if library == "prdc" and n > args.package_repeats_above else args.repeats
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", library, str(n), "--dim", str(args.dim),
                   "--k", str(args.k), "--repeats", str(repeats), "--seed", str(args.seed)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(f"{n:>8}  {library:<12} failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            results[library] = out["result"]
            peak = out["peak_extra_kib"] / 1024 if out["peak_extra_kib"] >= 0 else float("nan")
            shown = ", ".join(f"{key[:4]}={value:.4f}" for key, value in out["result"].items())
            print(f"{n:>8}  {library:<12} {np.median(out['times']):>9.2f} {np.median(out['cpu']):>8.2f} "
                  f"{peak:>17.0f}  {shown}")
        if len(results) == 2:
            same = all(results["fastdensity"][key] == results["prdc"][key] for key in results["prdc"])
            print(f"{'':>8}  identical results: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
