"""Time KNNDensity and prdc on dask arrays (threads scheduler) against the same calls in memory.

    python bench/compare_dask_knn.py [--repeats R] [--out FILE]

* KNNDensity fit + score_samples, n = 2e5 training points, m = 2e4 queries, d = 4, k = 10: in
  memory; fitted on a dask array of ``--shards`` row blocks, NumPy queries; the same with the
  queries as a dask array of 4 chunks.
* prdc of 2e4 × 64 real and 2e4 × 64 fake features, k = 5: in memory; both as dask arrays of
  ``--shards`` row blocks.

The in-memory and dask runs alternate within each repeat and the medians are printed with their
ratio (dask / in memory), which a shared machine disturbs less than an absolute time; the results
are checked equal (KNN to 1e-10 relative, PRDC exactly). One warm-up call of each compiles the
kernels first.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import dask
import dask.array as da
import numpy as np

from fastdensity.knn import KNNDensity
from fastdensity.metrics import prdc


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    X, Q = rng.standard_normal((200_000, 4)), rng.standard_normal((20_000, 4))
    lazy_X = da.from_array(X, chunks=(len(X) // a.shards, 4))
    lazy_Q = da.from_array(Q, chunks=(len(Q) // 4, 4))
    real, fake = rng.standard_normal((20_000, 64)), rng.standard_normal((20_000, 64)) + 0.05
    lazy_real = da.from_array(real, chunks=(len(real) // a.shards, 64))
    lazy_fake = da.from_array(fake, chunks=(len(fake) // a.shards, 64))
    cases = {
        "knn fit+score, in memory": lambda: KNNDensity(10).fit(X).score_samples(Q),
        "knn fit+score, dask fit, NumPy queries": lambda: KNNDensity(10).fit(lazy_X).score_samples(Q),
        "knn fit+score, dask fit, dask queries": lambda: KNNDensity(10).fit(lazy_X).score_samples(lazy_Q).compute(),
        "prdc 2e4 x 64, in memory": lambda: prdc(real, fake, 5),
        "prdc 2e4 x 64, dask": lambda: prdc(lazy_real, lazy_fake, 5),
    }
    lines = [f"# {platform.processor() or platform.machine()}, {platform.python_version()}, dask {dask.__version__}, "
             f"threads scheduler, {a.shards} shards, medians of {a.repeats}"]
    with dask.config.set(scheduler="threads"):
        outs = {name: fn() for name, fn in cases.items()}  # warm-up (compilation), and the results
        base = outs["knn fit+score, in memory"]
        for name in list(cases)[1:3]:
            np.testing.assert_allclose(outs[name], base, rtol=1e-10)
        assert outs["prdc 2e4 x 64, dask"] == outs["prdc 2e4 x 64, in memory"]
        times = {name: [] for name in cases}
        for _ in range(a.repeats):
            for name, fn in cases.items():
                times[name].append(_timed(fn)[0])
    med = {name: statistics.median(t) for name, t in times.items()}
    for name in cases:
        ref = med["prdc 2e4 x 64, in memory" if name.startswith("prdc") else "knn fit+score, in memory"]
        lines.append(f"{name:42s} {med[name] * 1e3:9.1f} ms   x{med[name] / ref:5.2f}")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
