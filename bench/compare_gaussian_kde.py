"""Time fastdensity.gaussian_kde.evaluate against KernelDensity.score_samples and scipy's gaussian_kde.

    python bench/compare_gaussian_kde.py [--quick] [--n N] [--m M] [--dims 1,2,8] [--repeats R]
                                         [--scipy-m M] [--compare-with FILE] [--out FILE]

For each d the data are correlated normal draws (n training points, m independent queries) and
every contender uses the same kernel covariance, scipy's Scott bandwidth matrix:

* ``gaussian_kde``: ``fastdensity.gaussian_kde(data).evaluate(points)`` (the scipy drop-in);
* ``KernelDensity``: ``KernelDensity(bandwidth=<that matrix>).fit(X).score_samples(Q)`` (the
  estimator on the same engine; log densities);
* ``engine``: ``_kde_cpu.kde_logsum`` alone on pre-whitened queries, the floor both sit on;
* ``scipy``: ``scipy.stats.gaussian_kde(data).evaluate(points)`` (one thread), on the first
  ``--scipy-m`` queries (default: all m), its time scaled to m by pairs when fewer;
* with ``--compare-with FILE``, another version of ``fastdensity/kde/_gaussian_kde.py`` (e.g.
  ``git show <rev>:fastdensity/kde/_gaussian_kde.py > /tmp/old.py``), loaded as a module of the
  package: before/after in one process.

Each setup and one warm-up call (Numba compilation) happen outside the timing; then, per repeat,
the contenders run one after the other in a rotated order (interleaved), and the medians over the
repeats are reported with their ratios. On a shared, noisy machine quote the ratios of one run,
not the absolute times. Wall time is what counts; the process CPU time (all threads) is reported
too, because on an oversubscribed machine it shows the work done (spinning BLAS workers included)
independently of how much of the cores the process got. The results agree (max relative
difference printed).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

from _tee import Tee  # noqa: E402  (bench/, the script's folder, is on sys.path)

import fastdensity  # noqa: E402
from fastdensity import KernelDensity  # noqa: E402
from fastdensity.kde._kde_cpu import kde_logsum  # noqa: E402
from fastdensity.kde._engine_cpu import CPU_ENGINE  # noqa: E402


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def make_data(d, n, m, seed=0):
    rng = np.random.default_rng(seed)
    mix = np.eye(d) + 0.5 * np.tri(d, k=-1)  # correlated dimensions: a full bandwidth matrix
    return mix @ rng.standard_normal((d, n)), mix @ rng.standard_normal((d, m)) * 1.2


def load_other(path):
    """Another version of _gaussian_kde.py as ``fastdensity.kde._gaussian_kde_other``."""
    spec = importlib.util.spec_from_file_location("fastdensity.kde._gaussian_kde_other", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.gaussian_kde


def contenders(d, n, m, scipy_m, other):
    """(name, call, result-to-density, pairs timed) for each contender, set up and warmed up."""
    from scipy import linalg, stats

    data, points = make_data(d, n, m)
    X, Q = np.ascontiguousarray(data.T), np.ascontiguousarray(points.T)
    gk = fastdensity.gaussian_kde(data)
    kd = KernelDensity(bandwidth=gk.covariance if d > 1 else float(np.sqrt(gk.covariance[0, 0]))).fit(X)
    # the engine alone, on the queries whitened as KernelDensity does it (outside the timing)
    chol, train_t, log_w, _, log_norm = CPU_ENGINE.state(kd, np.float64)
    q_white = np.ascontiguousarray(linalg.solve_triangular(chol, Q.T, lower=True).T)
    sp = stats.gaussian_kde(data)
    sp_points = np.ascontiguousarray(points[:, :scipy_m])
    rows = [
        ("gaussian_kde", lambda: gk.evaluate(points), lambda r: r, n * m),
        ("KernelDensity", lambda: kd.score_samples(Q), np.exp, n * m),
        ("engine", lambda: kde_logsum(q_white, None, log_w, "gaussian", train_t=train_t) + log_norm, np.exp, n * m),
        ("scipy", lambda: sp.evaluate(sp_points), lambda r: r, n * scipy_m),
    ]
    if other is not None:
        old = other(data)
        rows.append(("gaussian_kde (other)", lambda: old.evaluate(points), lambda r: r, n * m))
    small = points[:, :64]
    gk.evaluate(small), kd.score_samples(Q[:64]), sp.evaluate(small[:, :4])
    kde_logsum(q_white[:64], None, log_w, "gaussian", train_t=train_t)
    if other is not None:
        rows[-1][1]()  # warm-up (its own first call)
    return rows, scipy_m


def run_dim(tee, d, n, m, repeats, scipy_m, other):
    rows, scipy_m = contenders(d, n, m, min(scipy_m, m), other)
    times = {name: [] for name, *_ in rows}
    cpu = {name: [] for name, *_ in rows}
    results = {}
    for r in range(repeats):
        k = r % len(rows)
        for name, call, to_density, _ in rows[k:] + rows[:k]:  # rotated: nobody always goes first
            c0, t0 = time.process_time(), time.perf_counter()
            out = call()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            results[name] = to_density(out)
    ref = results["gaussian_kde"]
    med, med_cpu = {}, {}
    for name, _, _, pairs in rows:
        scale = n * m / pairs  # scipy on a subset: scaled by pairs
        t = med[name] = float(np.median(times[name])) * scale
        c = med_cpu[name] = float(np.median(cpu[name])) * scale
        got = results[name]
        err = float(np.max(np.abs(got - ref[: got.shape[0]]) / ref[: got.shape[0]]))
        note = "" if pairs == n * m else f"  (timed on {pairs // n} queries, scaled by pairs)"
        tee(f"  d={d:<2d} {name:<22s} wall {t * 1e3:9.1f} ms  cpu {c * 1e3:9.1f} ms  {n * m / t:10.3e} pairs/s  "
            f"max rel diff vs gaussian_kde {err:.1e}{note}")
    for label, v in (("wall", med), ("cpu", med_cpu)):
        g = v["gaussian_kde"]
        line = (f"  d={d:<2d} {label} ratios: gaussian_kde / KernelDensity = {g / v['KernelDensity']:.3f}, "
                f"gaussian_kde / engine = {g / v['engine']:.3f}, KernelDensity / engine = "
                f"{v['KernelDensity'] / v['engine']:.3f}, scipy / gaussian_kde = {v['scipy'] / g:.1f}")
        if other is not None:
            line += (f", other / KernelDensity = {v['gaussian_kde (other)'] / v['KernelDensity']:.3f}, "
                     f"other / gaussian_kde = {v['gaussian_kde (other)'] / g:.3f}")
        tee(line)
    tee(f"  [load average {loadavg()}]")
    return med


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--m", type=int, default=20_000)
    parser.add_argument("--dims", default="1,2,8")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scipy-m", type=int, default=None, help="queries scipy is timed on (default: all)")
    parser.add_argument("--compare-with", default=None, help="another _gaussian_kde.py to time as well")
    parser.add_argument("--out", default=None)
    parser.add_argument("--append", action="store_true", help="append to --out instead of replacing it")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.m, args.repeats = 2000, 2000, 3
    scipy_m = args.m if args.scipy_m is None else args.scipy_m
    other = load_other(args.compare_with) if args.compare_with else None
    tee = Tee(args.out, args.append)
    import numba
    import scipy

    tee(f"# fastdensity.gaussian_kde.evaluate vs KernelDensity.score_samples vs scipy.stats.gaussian_kde.evaluate"
        f" — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    tee(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"Numba threads {numba.get_num_threads()}; Python {platform.python_version()}, NumPy {np.__version__}, "
        f"SciPy {scipy.__version__}, Numba {numba.__version__}")
    tee(f"# n = {args.n} training points, m = {args.m} queries, Scott bandwidth (scipy's matrix for all), "
        f"median of {args.repeats} interleaved repeats; scipy single-threaded"
        + (f"; other = {args.compare_with}" if other is not None else ""))
    for d in (int(v) for v in args.dims.split(",")):
        run_dim(tee, d, args.n, args.m, args.repeats, scipy_m, other)
    tee(f"# load average at the end: {loadavg()}")


if __name__ == "__main__":
    main()
