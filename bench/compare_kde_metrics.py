"""Time KernelDensity under non-euclidean metrics against scikit-learn's, in the same process.

    python bench/compare_kde_metrics.py [--n N] [--m M] [--d D] [--sklearn-queries S] [--out FILE]

Each metric: n training points and m queries (standard normal, d = 3 by default; haversine takes
(latitude, longitude) in radians, d = 2), the gaussian and epanechnikov kernels, bandwidth 0.5,
"fit + score_samples":

* fastdensity ``KernelDensity(metric=...)``: the exact Numba-parallel metric kernel
  (``fastdensity/kde/_kde_metric_cpu.py``, which skips the tiles outside a compact kernel's
  support under manhattan, chebyshev and minkowski; the euclidean row is the whitened fast path,
  which prunes nothing);
* scikit-learn ``KernelDensity(metric=..., rtol=0, atol=0)`` (its defaults: exact), its own tree.

scikit-learn is timed on the first ``--sklearn-queries`` queries and its time extrapolated to m
(fit + score time × m / S; the tree build is a small part); the two libraries' log densities on
those queries are compared (``max |Δ|`` of the log densities where scikit-learn's density is
above 1e-12 of the kernel's peak; below that its tree's log-space bookkeeping leaves residues).
The ratio is scikit-learn's time / fastdensity's (> 1: fastdensity is faster), from one run:
both libraries see the same load.
"""

from __future__ import annotations

import argparse
import datetime
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
from fastdensity.kde._kernels import log_kernel_norm  # noqa: E402

METRICS = [("euclidean", None), ("manhattan", None), ("chebyshev", None), ("minkowski", {"p": 3}),
           ("haversine", None)]
KERNELS = ("gaussian", "epanechnikov")
H = 0.5


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def data(metric, n, m, d, rng):
    if metric == "haversine":
        def draw(k):
            return np.c_[rng.uniform(-1.4, 1.4, k), rng.uniform(-3.0, 3.0, k)]
        return draw(n), draw(m)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--m", type=int, default=20_000)
    ap.add_argument("--d", type=int, default=3)
    ap.add_argument("--sklearn-queries", type=int, default=2_000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import sklearn
    from sklearn.neighbors import KernelDensity as SKKernelDensity

    out = Tee(args.out)
    out(f"# KernelDensity metrics vs scikit-learn — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    out(f"# fastdensity {fastdensity.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {loadavg()}")
    out(f"# n = {args.n}, m = {args.m}, d = {args.d} (haversine: 2), bandwidth {H}; scikit-learn rtol=0, atol=0 "
        f"timed on {args.sklearn_queries} queries and extrapolated to m")
    rng = np.random.default_rng(0)
    S = min(args.sklearn_queries, args.m)
    out(f"{'metric':<14} {'kernel':<13} {'fastdensity s':>13} {'sklearn s (extrap.)':>20} {'ratio':>7} {'max |Δ log p|':>14}")
    for metric, params in METRICS:
        X, Q = data(metric, args.n, args.m, args.d, rng)
        d = X.shape[1]
        for kernel in KERNELS:
            fd = KernelDensity(kernel=kernel, bandwidth=H, metric=metric, metric_params=params)
            fd.fit(X[:1100]).score_samples(Q[:1000])  # compile (the parallel driver) outside the timing
            t_fd, ours = timed(lambda: fd.fit(X).score_samples(Q))
            sk = SKKernelDensity(kernel=kernel, bandwidth=H, metric=metric, metric_params=params, rtol=0, atol=0)
            t_sk, ref = timed(lambda: sk.fit(X).score_samples(Q[:S]))
            t_sk *= args.m / S
            peak = log_kernel_norm(kernel, d) - d * np.log(H)
            ok = ref > peak + np.log(1e-12)
            delta = float(np.max(np.abs(ours[:S][ok] - ref[ok]))) if ok.any() else float("nan")
            out(f"{metric + (str(params['p']) if params else ''):<14} {kernel:<13} {t_fd:>13.3f} "
                f"{t_sk:>20.2f} {t_sk / t_fd:>7.1f} {delta:>14.2e}")
    out(f"# load at the end {loadavg()}")


if __name__ == "__main__":
    main()
