"""Time fastdensity's ``KernelDensity.evaluate_grid`` against KDEpy's ``FFTKDE`` on equal grids.

    python bench/compare_fft.py [--quick] [--n N] [--repeats R] [--out FILE]

Both in one process, one after the other in interleaved repeats, so that the *ratios* survive a
noisy, shared machine. For each case (1-D on 1,024 grid points, 2-D on 256 × 256):

* n standard normal points (independent coordinates), the gaussian kernel with bandwidth
  h = n^(-1/(d+4)) (Scott's factor for unit variance; KDEpy's ``bw`` is the kernel's standard
  deviation, the same h);
* **the same grid**: fastdensity's default grid (the data's range padded by 4 h per axis) is
  passed to KDEpy as its grid (a 1-D array, or the (65,536, 2) cartesian product, which KDEpy
  requires to be sorted and to hold every data point strictly inside);
* timed: ``evaluate_grid`` (the default ``below_floor="-inf"``, and ``"recompute"``, which sums
  the nodes below the FFT's rounding floor in log space; KDEpy returns its rounding noise there)
  / ``FFTKDE.evaluate(grid)`` on a fitted model (KDEpy's ``fit`` only
  stores the data; fastdensity's ``fit`` validates and checks the bandwidth, timed apart as
  "fit"); fastdensity's cached per-fit data range is dropped before every timed call, so it is
  recomputed as KDEpy recomputes its own (the row "range kept" keeps it, as a model that
  is evaluated again does: the binning is then fastdensity's only pass over the data); one
  warm-up call each first (it compiles Numba's binning), then the median of ``--repeats``
  interleaved calls, wall and process CPU time;
* accuracy of both against the exact engine (``algorithm="exact"``) on the grid nodes (all of
  them in 1-D; 1,000 sampled nodes in 2-D): max |Δp| / max p over those nodes, and max |Δ log p|
  over the nodes where p ≥ 10⁻³ max p;
* where the time goes: fastdensity's binning alone (bytes read per second), the padded FFT
  convolution alone (the flop rate of its three real FFTs, 2.5 N log2 N each) and, where
  ``evaluate_grid`` convolves a separable window directly instead, that convolution (one call
  each, not medians).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

from _tee import Tee  # noqa: E402  (bench/, the script's folder, is on sys.path)

import fastdensity  # noqa: E402
from fastdensity.kde._fft_direct_cpu import convolve_separable, direct_cost  # noqa: E402
from fastdensity.kde._fft_evaluate import direct_is_cheaper, plan_grid, window_factors  # noqa: E402
from fastdensity.kde._fft_grid import binned_weights, convolve, offset_radii  # noqa: E402
from fastdensity.kde._fft_bound import profile  # noqa: E402


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def read_bandwidth_probe(size=1 << 25, repeats=5):
    """GB/s of a Numba-parallel sum over a float64 array far larger than the caches: the rate at
    which this machine's threads read memory (what the binning's read of the data is held to)."""
    import numba

    @numba.njit(parallel=True, cache=False)
    def total(a):
        s = 0.0
        for i in numba.prange(a.shape[0]):
            s += a[i]
        return s

    a = np.ones(size)
    total(a)
    best = min(_timed(lambda: total(a))[1] for _ in range(repeats))
    return a.nbytes / best / 1e9


def fft_probe(n=1 << 20, repeats=5):
    """GFlop/s (2.5 N log2 N per real transform of N points) of scipy.fft.rfft on this machine."""
    import numba
    import scipy.fft

    a = np.random.default_rng(0).standard_normal(n)
    w = numba.get_num_threads()
    best = min(_timed(lambda: scipy.fft.rfft(a, workers=w))[1] for _ in range(repeats))
    return 2.5 * n * math.log2(n) / best / 1e9


def _nodes(coords):
    return np.stack([g.ravel() for g in np.meshgrid(*coords, indexing="ij")], axis=1)


def _accuracy(p_hat, p):
    big = p >= 1e-3 * p.max()
    with np.errstate(divide="ignore"):
        dlog = np.abs(np.log(p_hat[big]) - np.log(p[big]))
    return float(np.max(np.abs(p_hat - p)) / p.max()), float(np.max(dlog))


def run_case(tee, d, n, grid_points, repeats, rng):
    from KDEpy import FFTKDE

    X = rng.standard_normal((n, d))
    h = float(n ** (-1.0 / (d + 4)))
    (_, t_fit, _) = _timed(lambda: fastdensity.KernelDensity(bandwidth=h).fit(X))
    kde = fastdensity.KernelDensity(bandwidth=h).fit(X)
    coords, log_p = kde.evaluate_grid(grid_points)  # warm-up: compiles the binning
    grid = coords[0] if d == 1 else _nodes(coords)
    data = X[:, 0] if d == 1 else X
    kdepy = FFTKDE(kernel="gaussian", bw=h).fit(data)
    y = kdepy.evaluate(grid)  # warm-up

    def ours(below_floor="-inf", keep_range=False):
        if not keep_range:
            kde._cache().pop("extremes", None)
        return kde.evaluate_grid(grid_points, below_floor=below_floor)

    n_below = int(np.sum(np.isneginf(ours()[1])))
    times = {"fastdensity": [], "fastdensity recompute": [], "fastdensity range kept": [], "KDEpy": []}
    for _ in range(repeats):
        times["fastdensity"].append(_timed(ours)[1:])
        times["fastdensity range kept"].append(_timed(lambda: ours(keep_range=True))[1:])
        times["fastdensity recompute"].append(_timed(lambda: ours("recompute"))[1:])
        times["KDEpy"].append(_timed(lambda: FFTKDE(kernel="gaussian", bw=h).fit(data).evaluate(grid))[1:])
    med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}

    # accuracy against the exact engine on the grid nodes
    nodes = _nodes(coords)
    pick = np.arange(len(nodes)) if d == 1 else np.sort(rng.choice(len(nodes), 1000, replace=False))
    exact = fastdensity.KernelDensity(bandwidth=h, algorithm="exact").fit(X)
    p = np.exp(exact.score_samples(nodes[pick]))
    acc_ours = _accuracy(np.exp(log_p.ravel()[pick]), p)
    acc_kdepy = _accuracy(np.asarray(y).ravel()[pick], p)

    # where the time goes
    plan = plan_grid(kde, grid_points, None)
    _, t_bin, _ = _timed(lambda: binned_weights(kde, plan["ext_lo"], plan["step"], plan["ext_shape"]))
    counts = binned_weights(kde, plan["ext_lo"], plan["step"], plan["ext_shape"])
    window = profile("gaussian", offset_radii(plan["A"], plan["step"], plan["half"]))
    factors = window_factors(kde, plan, window, np)
    direct = factors is not None and direct_is_cheaper(plan)  # what evaluate_grid runs
    _, t_fft, _ = _timed(lambda: convolve(np, counts, [window], plan["padded"], plan["half"]))
    N = math.prod(plan["padded"])
    flops = 3 * 2.5 * N * math.log2(N)
    if direct:
        _, t_direct, _ = _timed(lambda: convolve_separable(counts, factors, plan["half"], plan["below"],
                                                           plan["shape"]))
        macs = direct_cost(plan["ext_shape"], plan["shape"], plan["half"])

    shape = "x".join(str(len(c)) for c in coords)
    tee(f"  d={d}  n={n:,}  grid {shape} (padded FFT {'x'.join(map(str, plan['padded']))})  h={h:.4g}")
    tee(f"    {n_below:,} nodes below the FFT's rounding floor (-inf by default; below_floor='recompute' sums them)")
    for name in ("fastdensity", "fastdensity recompute", "fastdensity range kept", "KDEpy"):
        acc = acc_kdepy if name == "KDEpy" else acc_ours
        tee(f"    {name:21s} wall {med[name][0] * 1e3:8.2f} ms  cpu {med[name][1] * 1e3:8.2f} ms   "
            f"max|Δp|/max p {acc[0]:.2e}   max|Δlog p| (p ≥ 1e-3 max) {acc[1]:.2e}")
    for name in ("fastdensity", "fastdensity recompute", "fastdensity range kept"):
        tee(f"    ratio KDEpy / {name}: wall {med['KDEpy'][0] / med[name][0]:.1f}x, "
            f"cpu {med['KDEpy'][1] / med[name][1]:.1f}x")
    tee(f"    (fastdensity fit, not timed above: {t_fit * 1e3:.1f} ms; KDEpy's fit only stores the data)")
    tee(f"    fastdensity binning {t_bin * 1e3:.2f} ms ({X.nbytes / t_bin / 1e9:.2f} GB/s of data read), "
        f"FFT convolution {t_fft * 1e3:.2f} ms ({flops / t_fft / 1e9:.2f} GFlop/s)"
        + (f", direct separable convolution (what evaluate_grid runs here) {t_direct * 1e3:.2f} ms "
           f"({macs / t_direct / 1e9:.2f} G multiply-adds/s)" if direct else " (what evaluate_grid runs here)"))
    tee(f"    [load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}]")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    n = 20_000 if args.quick else args.n
    repeats = 3 if args.quick else max(3, args.repeats)
    tee = Tee(args.out)
    import numba
    import scipy
    import KDEpy

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    tee(f"# fastdensity KernelDensity.evaluate_grid vs KDEpy FFTKDE.evaluate on equal grids — {now}")
    tee(f"# machine: {platform.machine()}, {os.cpu_count()} logical cores, Numba threads {numba.get_num_threads()}; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
        f"Numba {numba.__version__}, KDEpy {KDEpy.__version__}")
    tee(f"# gaussian kernel, standard normal data, median of {repeats} interleaved repeats")
    tee(f"# probes: memory read {read_bandwidth_probe():.1f} GB/s (Numba-parallel sum of 256 MiB), "
        f"scipy.fft.rfft of 2^20 points {fft_probe():.2f} GFlop/s")
    rng = np.random.default_rng(0)
    run_case(tee, 1, n, 1024, repeats, rng)
    run_case(tee, 2, n, 256, repeats, rng)


if __name__ == "__main__":
    main()
