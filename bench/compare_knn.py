"""Time fastdensity's exact kNN density (fit + score) against the libraries users would pick.

    python bench/compare_knn.py [--quick] [--repeats R] [--out FILE] [--crossover]

For each target cell (k = 10, n training points, m = n query points, standard normal data,
queries independent of the training set) every library does the same work, "fit + score":
build its index on X and find the 10 nearest training points of every query:

* fastdensity ``KNNDensity(10).fit(X).score_samples(Q)``, float64 and float32 data
  (``algorithm="auto"``; the engine it picked is printed);
* scipy ``cKDTree(X).query(Q, k=10, workers=-1)`` (float64);
* scikit-learn ``NearestNeighbors(n_neighbors=10, n_jobs=-1).fit(X).kneighbors(Q)`` (float64,
  its own algorithm choice);
* faiss-cpu ``IndexFlatL2`` (float32, exact brute force on BLAS), when importable.

Timings are interleaved: each round runs every library once, in turn, so that a burst of load
from other processes hits all of them alike; the table shows the median over rounds and the
ratio library time / fastdensity float64 time (> 1: fastdensity is faster). Libraries slower
than ``--budget`` seconds per call are timed on a subset of the queries and extrapolated
(index build + query time × m / m_timed; the ``m timed`` column says how many).
Every library's k-th distances are compared with fastdensity's float64 ones (``max rel Δr_k``)
so that the timings compare like with like (faiss works in float32 and returns float32
distances).

``--crossover`` times fastdensity's k-d tree against its brute-force engine (fit + score,
n = m) over d and n: the table behind ``algorithm="auto"`` (``fastdensity/knn/_knn.py``).
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
from fastdensity.knn import KNNDensity  # noqa: E402

K = 10
CELLS = [(100_000, 2), (50_000, 16), (20_000, 64)]  # (n = m, d)
QUICK_CELLS = [(5_000, 2), (3_000, 16), (2_000, 64)]


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def git_state():
    import subprocess

    root = os.path.dirname(HERE)
    try:
        head = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fastdensity/knn"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except Exception:
        return "?"
    dirty = [line[3:] for line in dirty if line.strip()]
    return head[:90] + (f"; uncommitted: {', '.join(dirty)}" if dirty else "")


# --------------------------------------------------------------------------------------------
# the contenders: each returns a callable (m_sub) -> k-th distances of the first m_sub queries


def fd_runner(X, Q, dtype):
    Xd, Qd = X.astype(dtype), Q.astype(dtype)

    def run(m_sub):
        est = KNNDensity(K).fit(Xd)
        dist, _ = est.kneighbors(Qd[:m_sub])
        est.score_samples(Qd[:m_sub])  # the density itself: a second search, as a user would
        return dist[:, -1]

    def run_score(m_sub):
        est = KNNDensity(K).fit(Xd)
        est.score_samples(Qd[:m_sub])
        return None

    return run, run_score


def ckdtree_runner(X, Q):
    from scipy.spatial import cKDTree

    def run(m_sub):
        dist, _ = cKDTree(X).query(Q[:m_sub], k=K, workers=-1)
        return dist[:, -1]

    return run


def sklearn_runner(X, Q):
    from sklearn.neighbors import NearestNeighbors

    def run(m_sub):
        dist, _ = NearestNeighbors(n_neighbors=K, n_jobs=-1).fit(X).kneighbors(Q[:m_sub])
        return dist[:, -1]

    return run


def faiss_runner(X, Q):
    import faiss

    X32 = np.ascontiguousarray(X, dtype=np.float32)
    Q32 = np.ascontiguousarray(Q, dtype=np.float32)

    def run(m_sub):
        index = faiss.IndexFlatL2(X.shape[1])
        index.add(X32)
        d2, _ = index.search(Q32[:m_sub], K)
        return np.sqrt(np.maximum(d2[:, -1], 0.0))

    return run


# --------------------------------------------------------------------------------------------


def compare_cell(log, n, d, repeats, budget, quick):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    Q = rng.standard_normal((n, d))
    m = n
    fd64, fd64_score = fd_runner(X, Q, np.float64)
    fd32, fd32_score = fd_runner(X, Q, np.float32)
    contenders = [
        ("fastdensity float64", fd64_score, fd64),
        ("fastdensity float32", fd32_score, fd32),
        ("scipy cKDTree workers=-1", ckdtree_runner(X, Q), None),
        ("sklearn NearestNeighbors n_jobs=-1", sklearn_runner(X, Q), None),
    ]
    if importlib.util.find_spec("faiss") is not None:
        contenders.append(("faiss IndexFlatL2 (float32)", faiss_runner(X, Q), None))
    else:
        log("(faiss not importable: pip install faiss-cpu to include it)")

    engine = KNNDensity(K).fit(X).effective_algorithm_
    log("")
    log(f"## n = m = {n:,}, d = {d}, k = {K}  (fastdensity engine: {engine}; load {loadavg()})")
    # Probe: warm up (compiles fastdensity's kernels) and choose each contender's query subset.
    plans = []
    for name, timed, check in contenders:
        probe = min(m, 200 if not quick else 100)
        timed(probe)
        t0 = time.perf_counter()
        timed(probe)
        t_probe = time.perf_counter() - t0
        # split the probe into a fixed part (build) and a per-query part with a second size
        probe2 = min(m, 4 * probe)
        t0 = time.perf_counter()
        timed(probe2)
        t_probe2 = time.perf_counter() - t0
        per_query = max((t_probe2 - t_probe) / max(probe2 - probe, 1), 1e-9)
        fixed = max(t_probe - per_query * probe, 0.0)
        m_sub = m if fixed + per_query * m <= budget else int(max(probe2, (budget - fixed) / per_query))
        m_sub = min(m, m_sub)
        plans.append((name, timed, check, m_sub, fixed))
    times = {name: [] for name, *_ in plans}
    for _ in range(repeats):  # interleaved rounds
        for name, timed, _, m_sub, _ in plans:
            t0 = time.perf_counter()
            timed(m_sub)
            times[name].append(time.perf_counter() - t0)
    # k-th distances for the accuracy column (not timed)
    ref = fd64(min(m, 2000))
    rows = []
    for name, timed, check, m_sub, fixed in plans:
        t = float(np.median(times[name]))
        if m_sub < m:  # extrapolate the query part by the number of queries
            t_query = max(t - fixed, 0.0)
            t = fixed + t_query * m / m_sub
        r = (check or timed)(min(m, 2000))
        r = np.asarray(r, dtype=np.float64)
        rel = float(np.max(np.abs(r - ref) / ref))
        rows.append((name, t, m_sub, rel))
    base = rows[0][1]
    log(f"{'library':38s} {'time s':>9s} {'ratio':>7s} {'m timed':>9s} {'max rel Δr_k':>13s}")
    for name, t, m_sub, rel in rows:
        log(f"{name:38s} {t:9.3f} {t / base:7.2f} {m_sub:9d} {rel:13.1e}")
    best_other = min((t, name) for name, t, _, _ in rows[2:])
    log(f"fastdensity float64 vs the best library ({best_other[1]}): {best_other[0] / base:.2f}x;"
        f" float32: {best_other[0] / rows[1][1]:.2f}x")
    return rows


def crossover(log, repeats, quick):
    """Tree time / brute time, fit + score with n = m (the table behind algorithm='auto')."""
    sizes = [2_000, 10_000] if quick else [2_000, 10_000, 100_000]
    dims = [2, 3, 4, 5, 6, 8, 10]
    log("")
    log(f"## Crossover: k-d tree time / brute time (fit + score_samples, n = m, k = {K}; load {loadavg()})")
    log(f"{'n':>8s} " + " ".join(f"{'d=' + str(d):>8s}" for d in dims))
    for n in sizes:
        cells = []
        for d in dims:
            rng = np.random.default_rng(d)
            X = rng.standard_normal((n, d))
            Q = rng.standard_normal((n, d))
            ts = {}
            for alg in ("kd_tree", "brute"):
                KNNDensity(K, algorithm=alg).fit(X[:500]).score_samples(Q[:50])  # compile
            runs = {alg: [] for alg in ("kd_tree", "brute")}
            for _ in range(repeats):
                for alg in ("kd_tree", "brute"):
                    t0 = time.perf_counter()
                    KNNDensity(K, algorithm=alg).fit(X).score_samples(Q)
                    runs[alg].append(time.perf_counter() - t0)
            ts = {alg: float(np.median(v)) for alg, v in runs.items()}
            cells.append(f"{ts['kd_tree'] / ts['brute']:8.2f}")
        log(f"{n:8d} " + " ".join(cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test; do not quote)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds per call above which a library is timed on a query subset")
    parser.add_argument("--out", default=None)
    parser.add_argument("--crossover", action="store_true", help="also time tree vs brute over d and n")
    parser.add_argument("--cells", default=None,
                        help="comma-separated indices of the cells to run (default: all three)")
    args = parser.parse_args()
    log = Tee(args.out)
    import numba
    import scipy
    import sklearn

    log(f"# fastdensity kNN density vs other libraries — {datetime.datetime.now():%Y-%m-%d %H:%M}")
    log(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"Numba threads {numba.get_num_threads()}; load {loadavg()}")
    versions = (f"numpy {np.__version__}, scipy {scipy.__version__}, "
                f"scikit-learn {sklearn.__version__}, numba {numba.__version__}")
    try:
        import faiss

        versions += f", faiss {faiss.__version__} ({faiss.omp_get_max_threads()} OpenMP threads)"
    except ImportError:
        pass
    log(versions)
    log(f"fastdensity checkout: {git_state()}")
    log("fit + score: index build + the 10 nearest neighbours of every query; median of "
        f"{args.repeats} interleaved rounds; ratio = time / fastdensity float64 time")
    cells = QUICK_CELLS if args.quick else CELLS
    if args.cells:
        cells = [cells[int(i)] for i in args.cells.split(",")]
    for n, d in cells:
        compare_cell(log, n, d, args.repeats, args.budget, args.quick)
    if args.crossover:
        crossover(log, max(3, args.repeats // 2), args.quick)
    _ = fastdensity


if __name__ == "__main__":
    main()
