"""First-call latency: import, then fit + score a small KDE, in fresh processes.

    python bench/compile_time.py [--runs 3] [--out FILE]

Each trial makes a fresh, empty Numba cache directory (``NUMBA_CACHE_DIR``) and runs a fresh
Python process twice against it:

* cold: the cache is empty, every kernel the call needs is compiled (and written to the cache);
* warm: the second process, same directory, loads the compiled kernels from the cache.

Each process times ``import fastdensity`` and then ``KernelDensity(bandwidth=0.5).fit(X)``
followed by ``score_samples(X)`` for X of shape (1000, 2), float64, Gaussian kernel; the
printed numbers are the medians over the trials. Python's own bytecode caches and the
operating system's file cache are warm in both (as on a user's machine after installation).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import fastdensity
t1 = time.perf_counter()
import numpy as np
X = np.random.default_rng(0).standard_normal((1000, 2))
kde = fastdensity.KernelDensity(bandwidth=0.5).fit(X)
t2 = time.perf_counter()
out = kde.score_samples(X)
t3 = time.perf_counter()
assert out.shape == (1000,) and np.all(np.isfinite(out))
t4 = time.perf_counter()
kde.score_samples(X)  # the same call again, compiled: the steady-state cost of this size
t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "fit": t2 - t1, "score": t3 - t2,
                  "first_call": t3 - t1, "second_call": t5 - t4}))
"""


def run_child(cache_dir):
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")  # run from a checkout
    res = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         cwd=tempfile.gettempdir(), check=False)
    if res.returncode != 0:
        raise RuntimeError(f"child process failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="fresh cache directories (trials)")
    ap.add_argument("--out", default=None, help="also write the printed output to this file")
    args = ap.parse_args(argv)

    cold, warm = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="fastdensity-numba-cache-") as cache:
            cold.append(run_child(cache))
            warm.append(run_child(cache))

    keys = ["import", "fit", "score", "first_call", "second_call"]
    labels = {"import": "import fastdensity", "fit": "fit (n=1000, d=2)", "score": "score_samples (m=1000)",
              "first_call": "fit + score, first call", "second_call": "score_samples again (compiled)"}
    lines = [f"# first-call latency, median of {args.runs} fresh processes per row "
             f"(python {sys.version.split()[0]}, {os.cpu_count()} cores)",
             f"{'step':34s} {'cold cache s':>12s} {'warm cache s':>12s}"]
    for k in keys:
        lines.append(f"{labels[k]:34s} {statistics.median(r[k] for r in cold):12.3f} "
                     f"{statistics.median(r[k] for r in warm):12.3f}")
    tot_c = statistics.median(r["import"] + r["first_call"] for r in cold)
    tot_w = statistics.median(r["import"] + r["first_call"] for r in warm)
    lines.append(f"{'import + fit + score (total)':34s} {tot_c:12.3f} {tot_w:12.3f}")
    lines.append("# target (bench/README.md): first call ~5 s with a cold cache, ~1 s with a warm one")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
