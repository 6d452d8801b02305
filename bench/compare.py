"""Time fastdensity's exact Gaussian KDE against the libraries users would otherwise pick.

    python bench/compare.py [--quick] [--out FILE]

Everything runs in one process, one library after the other, so that the *ratios* survive a
noisy, shared machine (absolute rates do not). For each case:

* the data are standard normal, **whitened exactly** (sample covariance = I, ddof=1), so that
  scipy's ``gaussian_kde`` (whose kernel covariance is data covariance × factor²) with
  ``bw_method=h`` uses the same isotropic kernel N(0, h² I) as every other library;
* training points (n) and query points (m) are independent draws;
* each library is timed on ``score``-type evaluation only (fit/tree build outside the timed
  part); one warm-up call first (it compiles fastdensity's kernels), then the median of
  ``--repeats`` (≥ 3) timed calls;
* slow libraries are timed on a subset of the queries (at most 2,000, fewer when a call would
  take more than a couple of seconds) and their rate is reported in pairs/s = n × m_timed / t,
  i.e. extrapolated by pairs; the ``m timed`` column says how many queries were timed;
* every library's log densities on the timed queries are compared with fastdensity's float64
  ones: ``max |Δ log p|`` (≈ the max relative difference of the densities), so that the
  timings compare like with like.

The floor is the rate of fastdensity's vectorised exp (``fast_exp_neg``) on this machine, in
a plain Numba-parallel loop, and the KDE's pairs/s as a fraction of it.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

from _tee import Tee  # noqa: E402  (bench/, the script's folder, is on sys.path)

import fastdensity  # noqa: E402

# --------------------------------------------------------------------------------------------
# data


def whitened_normal(rng, n, d):
    """n × d standard normal sample whose sample mean is 0 and sample covariance (ddof=1) is I."""
    X = rng.standard_normal((n, d))
    X -= X.mean(axis=0)
    L = np.linalg.cholesky(np.atleast_2d(np.cov(X.T)))
    return np.linalg.solve(L, X.T).T


def make_case(n, m, d, seed=0):
    rng = np.random.default_rng(seed)
    X = whitened_normal(rng, n, d)
    Q = rng.standard_normal((m, d))
    h = float(n ** (-1.0 / (d + 4)))  # Scott's factor on unit-covariance data
    return X, Q, h


# --------------------------------------------------------------------------------------------
# timing


def median_time(fn, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def time_on_subset(make_fn, n, m, repeats, target_s, max_queries, probe_queries):
    """Warm up / probe ``make_fn(k)`` (a callable scoring the first k queries), pick a subset
    size so that one call takes about ``target_s``, and time it. Returns (m_timed, median, out)."""
    k = min(m, probe_queries)
    t0 = time.perf_counter()
    make_fn(k)()
    t_probe = time.perf_counter() - t0
    per_query = max(t_probe / k, 1e-9)
    k = int(min(m, max_queries, max(probe_queries, target_s / per_query)))
    med, out = median_time(make_fn(k), repeats)
    return k, med, out


def max_abs_log_diff(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return float(np.max(np.abs(a - b)))


def git_state():
    """Commit and modified tracked files of the checkout being measured (shared working trees)."""
    import subprocess
    root = os.path.dirname(HERE)
    try:
        head = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--name-only", "HEAD", "--", "fastdensity"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.split()
    except Exception:
        return "?"
    return head[:90] + (f"; uncommitted changes in: {', '.join(dirty)}" if dirty else "")


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def fmt_ratio(x):
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.1e}x"


def fmt_rate(x):
    return f"{x:10.3e}"


# --------------------------------------------------------------------------------------------
# the floor: fast_exp_neg over arrays


def exp_floor(log, quick):
    from numba import njit, prange

    from fastdensity._backend._fastexp import FASTMATH, fast_exp_neg

    @njit(parallel=True, fastmath=FASTMATH)
    def exp_map(x, out):
        for i in prange(x.shape[0]):
            out[i] = fast_exp_neg(x[i])

    @njit(parallel=True, fastmath=FASTMATH)
    def exp_reduce(x, offs, nblocks):
        # The KDE's inner loop shape: Σ exp over a cache-resident array, many times over.
        out = np.zeros(nblocks)
        for b in prange(nblocks):
            s = x[0] - x[0]
            for r in range(offs.shape[0]):
                o = offs[r]
                for j in range(x.shape[0]):
                    s += fast_exp_neg(x[j] + o)
            out[b] = s
        return out

    @njit(parallel=True, fastmath=FASTMATH)
    def libm_reduce(x, offs, nblocks):
        out = np.zeros(nblocks)
        for b in prange(nblocks):
            s = x[0] - x[0]
            for r in range(offs.shape[0]):
                o = offs[r]
                for j in range(x.shape[0]):
                    s += math.exp(x[j] + o)
            out[b] = s
        return out

    import numba

    nthreads = numba.get_num_threads()
    nblocks = 4 * nthreads
    n_big = 2_000_000 if quick else 20_000_000
    reps = 200 if quick else 20000  # ~0.2-0.5 s per call, like a KDE call: short parallel regions
    # suffer more from other processes on a shared machine
    rates = {}
    rng = np.random.default_rng(1)
    for dt in (np.float64, np.float32):
        name = np.dtype(dt).name
        xs = (-rng.uniform(0.0, 30.0, 4096)).astype(dt)
        offs = (-np.linspace(0.0, 1e-3, reps)).astype(dt)
        with fastdensity.threads(1):
            exp_reduce(xs, offs[:2], nblocks)
            t, _ = median_time(lambda: exp_reduce(xs, offs, nblocks), 5)
        rates[(name, "reduce1")] = nblocks * reps * xs.shape[0] / t
        x = (-rng.uniform(0.0, 30.0, n_big)).astype(dt)
        out = np.empty_like(x)
        exp_map(x[:1000], out[:1000])
        t, _ = median_time(lambda: exp_map(x, out), 5)
        rates[(name, "map")] = n_big / t
        xs = (-rng.uniform(0.0, 30.0, 4096)).astype(dt)
        offs = (-np.linspace(0.0, 1e-3, reps)).astype(dt)
        exp_reduce(xs, offs[:2], nblocks)
        t, _ = median_time(lambda: exp_reduce(xs, offs, nblocks), 5)
        rates[(name, "reduce")] = nblocks * reps * xs.shape[0] / t
        libm_reduce(xs, offs[:2], nblocks)
        t, _ = median_time(lambda: libm_reduce(xs, offs, nblocks), 3)
        rates[(name, "libm")] = nblocks * reps * xs.shape[0] / t
    log("")
    log(f"## Floor: exp rate on this machine ({nthreads} Numba threads)")
    log("")
    log(f"{'loop':58s} {'float64 /s':>12s} {'float32 /s':>12s}")
    log(f"{'fast_exp_neg, sum over a cache-resident 4096 array':58s} "
        f"{rates[('float64', 'reduce')]:12.3e} {rates[('float32', 'reduce')]:12.3e}")
    log(f"{'  the same on 1 thread':58s} "
        f"{rates[('float64', 'reduce1')]:12.3e} {rates[('float32', 'reduce1')]:12.3e}")
    log(f"{f'fast_exp_neg, out = exp(x) over a {n_big:.0e}-element array':58s} "
        f"{rates[('float64', 'map')]:12.3e} {rates[('float32', 'map')]:12.3e}")
    log(f"{'math.exp (libm, scalar), same sum as the first row':58s} "
        f"{rates[('float64', 'libm')]:12.3e} {rates[('float32', 'libm')]:12.3e}")
    return rates


# --------------------------------------------------------------------------------------------
# libraries


class _EngineKDE:
    """Stand-in used only while ``fastdensity.KernelDensity`` does not exist yet: the engine op
    with the Gaussian normalisation (the output header says when it was used)."""

    def __init__(self, bandwidth):
        self.h = bandwidth

    def fit(self, X):
        from fastdensity.kde._kde_cpu import kde_logsum
        self._op = kde_logsum
        self._Xw = np.ascontiguousarray(X / np.asarray(self.h, dtype=X.dtype))
        n, d = X.shape
        self._const = -math.log(n) - d * math.log(self.h) - 0.5 * d * math.log(2 * math.pi)
        return self

    def score_samples(self, Q):
        Qw = np.ascontiguousarray(Q / np.asarray(self.h, dtype=Q.dtype))
        return self._op(Qw, self._Xw) + self._const


FD_HAS_ESTIMATOR = hasattr(fastdensity, "KernelDensity")


def fd_kde(h, dtype):
    if not FD_HAS_ESTIMATOR:
        return _EngineKDE(h)
    return fastdensity.KernelDensity(bandwidth=h, kernel="gaussian", algorithm="exact")


def run_case(log, n, m, d, args, rows, fd_rates):
    X, Q, h = make_case(n, m, d)
    log("")
    log(f"## d = {d}, n = {n:,}, m = {m:,}, bandwidth h = {h:.4g} (isotropic Gaussian kernel)"
        f"   [load average {loadavg()}]")
    reps = args.repeats
    target = 0.3 if args.quick else 2.0

    def add(lib, m_timed, t, diff, note=""):
        rate = n * m_timed / t
        rows.append(dict(lib=lib, d=d, n=n, m=m, m_timed=m_timed, rate=rate, diff=diff, note=note))
        log(f"  {lib:44s} m timed {m_timed:7d}  {t:8.3f} s  {rate:10.3e} pairs/s  "
            f"max|Δlog p| {diff:9.2e} {note}")
        return rate

    # fastdensity, float64 is the reference for the agreement checks
    ref = None
    for dt in (np.float64, np.float32):
        Xt, Qt = X.astype(dt), Q.astype(dt)
        kde = fd_kde(h, dt).fit(Xt)
        kde.score_samples(Qt[:16])  # warm-up: compiles this dtype / d
        t, out = median_time(lambda: kde.score_samples(Qt), reps)
        if ref is None:
            ref = np.asarray(out, dtype=np.float64)
            # Independent check of the reference against the engine's formula in float64.
            diff = 0.0
        else:
            diff = max_abs_log_diff(out, ref)
        r = add(f"fastdensity KernelDensity {np.dtype(dt).name}", m, t, diff)
        fd_rates[(d, n, np.dtype(dt).name)] = r

    # fastdensity on one thread: the per-core comparison with the single-threaded libraries,
    # and less sensitive than the 2-thread number to other processes on a shared machine.
    kde1 = fd_kde(h, np.float64).fit(X)
    with fastdensity.threads(1):
        kde1.score_samples(Q[:16])
        m1, t1, out1 = time_on_subset(lambda k: (lambda: kde1.score_samples(Q[:k])), n, m, reps,
                                      target, m, probe_queries=min(m, 2000))
    fd_rates[(d, n, "float64-1thr")] = add("fastdensity KernelDensity float64 1 thread", m1, t1,
                                           max_abs_log_diff(out1, ref[:m1]))

    # brute-force float64 oracle on a few queries, to anchor the reference itself
    k = min(m, 64)
    r2 = ((Q[:k, None, :] - X[None, :, :]) ** 2).sum(-1) / (h * h)
    from scipy.special import logsumexp
    oracle = logsumexp(-0.5 * r2, axis=1) - math.log(n) - d * math.log(h) - 0.5 * d * math.log(2 * math.pi)
    log(f"  (fastdensity float64 vs NumPy brute force on {k} queries: max|Δlog p| "
        f"{max_abs_log_diff(ref[:k], oracle):.2e})")

    def slow(lib, make_fn, note="", max_queries=2000, to_log=np.log):
        try:
            m_t, t, out = time_on_subset(make_fn, n, m, reps, target, max_queries,
                                         probe_queries=min(m, 20))
        except Exception as exc:  # a library's failure must not lose the whole table
            log(f"  {lib:44s} FAILED: {type(exc).__name__}: {exc}")
            return
        with np.errstate(divide="ignore"):
            lp = to_log(np.asarray(out, dtype=np.float64))
        add(lib, m_t, t, max_abs_log_diff(lp, ref[:m_t]), note)

    ident = lambda a: a  # noqa: E731

    # scikit-learn
    from sklearn.neighbors import KernelDensity as SKKDE
    for rtol in (0.0, 1e-4):
        sk = SKKDE(bandwidth=h, kernel="gaussian", rtol=rtol).fit(X)
        slow(f"scikit-learn KernelDensity rtol={rtol:g}",
             lambda k, sk=sk: (lambda: sk.score_samples(Q[:k])), to_log=ident,
             note="(1 thread)" + (" approximate" if rtol else ""))

    # scipy: on whitened data bw_method=h gives kernel covariance h² I
    from scipy.stats import gaussian_kde as sp_kde
    sp = sp_kde(X.T, bw_method=h)
    slow("scipy.stats.gaussian_kde.logpdf", lambda k: (lambda: sp.logpdf(Q[:k].T)), to_log=ident,
         note="(1 thread)")
    slow("scipy.stats.gaussian_kde.evaluate", lambda k: (lambda: sp.evaluate(Q[:k].T)),
         note="(1 thread, no log: may underflow)")

    # KDEpy
    from KDEpy import FFTKDE, NaiveKDE
    nk = NaiveKDE(kernel="gaussian", bw=h).fit(X if d > 1 else X[:, 0])
    slow("KDEpy NaiveKDE", lambda k: (lambda: nk.evaluate(Q[:k] if d > 1 else Q[:k, 0])),
         note="(1 thread)")

    # statsmodels
    if d == 1:
        import statsmodels.api as sm
        su = sm.nonparametric.KDEUnivariate(X[:, 0])
        su.fit(kernel="gau", bw=h, fft=False)
        slow("statsmodels KDEUnivariate (fft=False)",
             lambda k: (lambda: su.evaluate(Q[:k, 0])), note="(1 thread)")
    from statsmodels.nonparametric.kernel_density import KDEMultivariate
    smk = KDEMultivariate(X, var_type="c" * d, bw=[h] * d)
    slow("statsmodels KDEMultivariate", lambda k: (lambda: smk.pdf(Q[:k])), note="(1 thread)",
         max_queries=1000)

    # torch: what a user would write by hand (chunked cdist + logsumexp)
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        Xtch = torch.from_numpy(X)
        const = -math.log(n) - d * math.log(h) - 0.5 * d * math.log(2 * math.pi)

        def torch_fn(k):
            Qtch = torch.from_numpy(np.ascontiguousarray(Q[:k]))

            def f():
                outs = []
                for s in range(0, k, 256):
                    D2 = torch.cdist(Qtch[s:s + 256], Xtch).pow_(2).mul_(-0.5 / (h * h))
                    outs.append(torch.logsumexp(D2, dim=1))
                return (torch.cat(outs) + const).numpy()
            return f
        slow(f"torch cdist+logsumexp float64 ({torch.get_num_threads()} thr)", torch_fn,
             to_log=ident, max_queries=m)

    # KDEpy FFTKDE: a different task (binned data, density on an equidistant grid)
    if d <= 2:
        npts = int(round(m ** (1.0 / d)))
        try:
            def fft_run():
                f = FFTKDE(kernel="gaussian", bw=h).fit(X if d > 1 else X[:, 0])
                return f.evaluate(npts)
            fft_run()
            t, (grid, dens) = median_time(fft_run, reps)
            grid = np.atleast_2d(np.asarray(grid).T).T
            fd_grid = fd_kde(h, np.float64).fit(X).score_samples(np.ascontiguousarray(grid))
            mask = np.asarray(dens) > 1e-3 * np.max(dens)  # compare where the density matters
            with np.errstate(divide="ignore"):
                diff = max_abs_log_diff(np.log(np.asarray(dens))[mask], fd_grid[mask])
            add("KDEpy FFTKDE (GRID, binned: different task)", grid.shape[0], t, diff,
                note=f"(fit+evaluate on {npts}^{d} grid; Δ where p > 1e-3 max)")
        except Exception as exc:
            log(f"  KDEpy FFTKDE FAILED: {type(exc).__name__}: {exc}")
    return X, Q, h, ref


def run_gaussian_kde(log, X, Q, h, ref, args, gk_rows):
    """fastdensity.gaussian_kde against scipy's on the same (whitened) data."""
    from scipy.stats import gaussian_kde as sp_kde
    n, d = X.shape
    m = Q.shape[0]
    fd_gkde = getattr(fastdensity, "gaussian_kde", None)
    if fd_gkde is None:
        try:  # written, not yet exported from the package
            from fastdensity.kde._gaussian_kde import gaussian_kde as fd_gkde
        except ImportError:
            log("  fastdensity.gaussian_kde: not available in this build")
            return
    fd = fd_gkde(X.T, bw_method=h)
    sp = sp_kde(X.T, bw_method=h)
    target = 0.3 if args.quick else 2.0
    for meth in ("logpdf", "evaluate"):
        fdm, spm = getattr(fd, meth), getattr(sp, meth)
        fdm(Q[:16].T)
        t_fd, out_fd = median_time(lambda: fdm(Q.T), args.repeats)
        m_t, t_sp, out_sp = time_on_subset(lambda k: (lambda: spm(Q[:k].T)), n, m, args.repeats,
                                           target, 2000, min(m, 100))
        conv = (lambda a: a) if meth == "logpdf" else np.log
        with np.errstate(divide="ignore"):
            diff = max_abs_log_diff(conv(np.asarray(out_fd))[:m_t], conv(np.asarray(out_sp)))
            diff_ref = max_abs_log_diff(conv(np.asarray(out_fd)), ref)
        r_fd, r_sp = n * m / t_fd, n * m_t / t_sp
        gk_rows.append((meth, d, n, m, r_fd, m_t, r_sp, diff, diff_ref))


# --------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test, not a benchmark)")
    ap.add_argument("--out", default=None, help="also write the printed output to this file")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (≥ 3)")
    args = ap.parse_args(argv)
    args.repeats = max(3, args.repeats)
    log = Tee(args.out)
    warnings.filterwarnings("ignore", category=RuntimeWarning)

    if args.quick:
        cases = [(2000, 2000, 1), (2000, 2000, 2), (2000, 2000, 8), (5000, 5000, 2)]
    else:
        cases = [(20000, 20000, 1), (20000, 20000, 2), (20000, 20000, 8), (100000, 100000, 2)]

    import numba
    import scipy
    import sklearn
    versions = {"fastdensity": fastdensity.__version__, "numpy": np.__version__,
                "numba": numba.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}
    for mod in ("KDEpy", "statsmodels", "torch"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            versions[mod] = "-"
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except Exception:
        pass
    log(f"# fastdensity exact Gaussian KDE vs other libraries  ({datetime.datetime.now():%Y-%m-%d %H:%M})")
    log(f"# machine: {cpu}, {os.cpu_count()} logical cores, Numba threads {numba.get_num_threads()}, "
        f"Python {platform.python_version()}")
    log("# " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    log(f"# code: {git_state()}")
    log(f"# mode: {'QUICK (smoke test sizes)' if args.quick else 'full'}; median of {args.repeats} "
        "timed calls after a warm-up; score only (fit outside the timer) unless noted")
    log("# slow libraries: timed on the first 'm timed' queries; pairs/s = n × m_timed / t "
        "(extrapolated by pairs to the full m)")
    if not FD_HAS_ESTIMATOR:
        log("# WARNING: fastdensity.KernelDensity missing: timing the engine op kde_logsum directly")
    log("# max|Δlog p|: against fastdensity float64 on the same queries (≈ max relative density difference)")

    rates_floor = exp_floor(log, args.quick)

    rows, fd_rates, gk_rows = [], {}, []
    for n, m, d in cases:
        X, Q, h, ref = run_case(log, n, m, d, args, rows, fd_rates)
        run_gaussian_kde(log, X, Q, h, ref, args, gk_rows)

    # ---------------------------------------------------------------------------- summary
    log("")
    log("## Summary: pairs/s and ratio fastdensity KernelDensity float64 / library")
    log("")
    log("ratio = fastdensity float64 (all threads) / library; 1-thr ratio = fastdensity float64 on one")
    log("thread / library (per core; scikit-learn, scipy, KDEpy and statsmodels use one thread)")
    log("")
    hdr = (f"{'library':46s} {'d':>2s} {'n':>7s} {'m':>7s} {'m timed':>7s} {'pairs/s':>10s} {'ratio':>9s} "
           f"{'1-thr ratio':>11s} {'max|Δlog p|':>11s}")
    log(hdr)
    log("-" * len(hdr))
    for r in rows:
        base = fd_rates[(r["d"], r["n"], "float64")]
        base1 = fd_rates[(r["d"], r["n"], "float64-1thr")]
        log(f"{r['lib'][:46]:46s} {r['d']:2d} {r['n']:7d} {r['m']:7d} {r['m_timed']:7d} "
            f"{fmt_rate(r['rate'])} {fmt_ratio(base / r['rate']):>9s} {fmt_ratio(base1 / r['rate']):>11s} "
            f"{r['diff']:11.2e}")

    log("")
    log("## Best exact library per case (FFTKDE and scikit-learn rtol>0 excluded: not exact pointwise)")
    for n, m, d in cases:
        exact = [r for r in rows if r["d"] == d and r["n"] == n and not r["lib"].startswith("fastdensity")
                 and "GRID" not in r["lib"] and "rtol=0.0001" not in r["lib"]]
        if not exact:
            continue
        best = max(exact, key=lambda r: r["rate"])
        f64 = fd_rates[(d, n, "float64")]
        f32 = fd_rates[(d, n, "float32")]
        sk4 = [r for r in rows if r["d"] == d and r["n"] == n and "rtol=0.0001" in r["lib"]]
        sk_txt = f", vs scikit-learn rtol=1e-4 {f64 / sk4[0]['rate']:.1f}x" if sk4 else ""
        f1 = fd_rates[(d, n, "float64-1thr")]
        log(f"  d={d} n={n:>7,}: best exact = {best['lib']} ({best['rate']:.3e}); "
            f"fastdensity f64 {f64:.3e} = {f64 / best['rate']:.1f}x (1 thread: {f1 / best['rate']:.1f}x)"
            f"{sk_txt}; f32/f64 = {f32 / f64:.2f}; 2 threads/1 thread = {f64 / f1:.2f}")

    if gk_rows:
        log("")
        log("## fastdensity.gaussian_kde vs scipy.stats.gaussian_kde (same data, same bw_method)")
        log("")
        log(f"{'method':9s} {'d':>2s} {'n':>7s} {'m':>7s} {'fastdensity':>11s} {'scipy':>10s} "
            f"{'(m timed)':>9s} {'ratio':>8s} {'Δ vs scipy':>10s} {'Δ vs KDE':>9s}")
        for meth, d, n, m, r_fd, m_t, r_sp, diff, diff_ref in gk_rows:
            log(f"{meth:9s} {d:2d} {n:7d} {m:7d} {r_fd:11.3e} {r_sp:10.3e} {m_t:9d} "
                f"{r_fd / r_sp:7.1f}x {diff:10.2e} {diff_ref:9.2e}")

    log("")
    log("## Fraction of the exp floor reached (KDE pairs/s ÷ fast_exp_neg sum rate, same dtype and threads)")
    for (d, n, dt), r in sorted(fd_rates.items()):
        fl = rates_floor[("float64", "reduce1")] if dt == "float64-1thr" else rates_floor[(dt, "reduce")]
        log(f"  d={d} n={n:>7,} {dt}: {r:.3e} pairs/s = {r / fl:5.1%} of {fl:.3e} exp/s")
    log("")
    log(f"# load average at the end: {loadavg()}")
    log("# targets (bench/README.md): float64 ≥ 1.7e9 pairs/s at d=2, ≥ 1.3e9 at d=8 (2 cores); "
        "≥ 30x the best exact library; ≥ 10x scikit-learn rtol=1e-4; float32 ≥ 2x float64")


if __name__ == "__main__":
    main()
