"""Time ``KernelDensity`` fitted in memory against fitted on a sharded dask array (fit + score).

    python bench/compare_kde_dask.py [--n N] [--m M] [--d D] [--shards S] [--query-chunks C]
                                     [--bandwidth scott] [--no-cluster] [--out FILE]

Rows: the in-memory fit and ``score_samples`` (NumPy); the dask fit on S row shards with the
threaded scheduler, scored with NumPy queries and with a dask array of C query chunks; the same on a
``distributed.LocalCluster`` of 2 worker processes with 1 thread each (their Numba threads as
many as the machine's cores). The first score of a dask fit includes building and persisting the
whitened shards, so each dask score is timed twice (first, then cached). Also printed: the largest
relative difference of the log densities from the in-memory ones. The data are standard normal
draws. Numba compiles in a small warm-up (in this process and on the workers) outside the timing.
Wall clock of one run each: on a shared machine quote the ratios.
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

from _tee import Tee  # noqa: E402

from fastdensity import KernelDensity  # noqa: E402

emit = print


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _dask_rows(label, X, Q, want, args):
    import dask.array as da

    Xd = da.from_array(X, chunks=(-(-X.shape[0] // args.shards), X.shape[1]))
    Qd = da.from_array(Q, chunks=(-(-Q.shape[0] // args.query_chunks), Q.shape[1]))
    warm = KernelDensity(bandwidth=args.bandwidth).fit(Xd[:2000])
    warm.score_samples(Q[:100])
    kde, t_fit = _timed(KernelDensity(bandwidth=args.bandwidth).fit, Xd)
    got, t_first = _timed(kde.score_samples, Q)
    _, t_numpy = _timed(kde.score_samples, Q)
    got_lazy, t_lazy = _timed(lambda: kde.score_samples(Qd).compute())
    err = max(float(np.max(np.abs(got / want - 1))), float(np.max(np.abs(got_lazy / want - 1))))
    emit(f"{label:>26} {t_fit:8.2f} {t_first:12.2f} {t_numpy:10.2f} {t_lazy:10.2f} {t_fit + t_numpy:12.2f} {err:10.1e}")


def main():
    global emit
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--m", type=int, default=20_000)
    parser.add_argument("--d", type=int, default=2)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--query-chunks", type=int, default=4)
    parser.add_argument("--bandwidth", default="scott")
    parser.add_argument("--no-cluster", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    emit = Tee(args.out)
    emit(f"# compare_kde_dask {datetime.datetime.now().isoformat(timespec='seconds')} "
         f"{platform.processor() or platform.machine()} {os.cpu_count()} cpus; {' '.join(sys.argv[1:])}")
    rng = np.random.default_rng(0)
    X, Q = rng.standard_normal((args.n, args.d)), rng.standard_normal((args.m, args.d))
    emit(f"n = {args.n}, m = {args.m}, d = {args.d}, bandwidth {args.bandwidth!r}, {args.shards} shards, "
         f"{args.query_chunks} query chunks; seconds")
    emit(f"{'':>26} {'fit':>8} {'score first':>12} {'score':>10} {'score dask':>10} {'fit+score':>12} {'max rel':>10}")
    KernelDensity(bandwidth=args.bandwidth).fit(X[:2000]).score_samples(Q[:100])
    kde, t_fit = _timed(KernelDensity(bandwidth=args.bandwidth).fit, X)
    want, t_score = _timed(kde.score_samples, Q)
    emit(f"{'in memory (NumPy)':>26} {t_fit:8.2f} {t_score:12.2f} {t_score:10.2f} {'':>10} {t_fit + t_score:12.2f} {0.0:10.1e}")
    import dask

    with dask.config.set(scheduler="threads"):
        _dask_rows("dask, threads scheduler", X, Q, want, args)
    if not args.no_cluster:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster, Client(cluster):
            _dask_rows("dask, LocalCluster 2 procs", X, Q, want, args)


if __name__ == "__main__":
    main()
