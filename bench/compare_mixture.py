"""Time one EM iteration of fastdensity's GaussianMixture against scikit-learn's.

    python bench/compare_mixture.py [--quick] [--n N] [--d D] [--k K] [--repeats R] [--out FILE]

Both estimators start from the same initial parameters (``weights_init``, ``means_init``,
``precisions_init`` taken from a short scikit-learn fit on a subsample) and run with ``tol=0``,
so they take the same iterations. The time per iteration is

    (T(max_iter = m2) − T(max_iter = m1)) / (m2 − m1)

which removes what a fit does once (validation, initialisation, the final E-step). The two
libraries alternate within each repeat and the median over repeats is reported, so that the
*ratio* survives a noisy, shared machine. Both use all cores (fastdensity's Numba threads,
scikit-learn's BLAS threads). Wall time is what counts; process CPU time (all threads) is
printed too, because on an oversubscribed machine it shows the work done independently of
how much of the cores the process got.

A second table runs both on one thread (fastdensity ``n_jobs=1``, scikit-learn's BLAS limited
to one thread): the ratio of the work each does, which a busy machine disturbs least.

The whole fit is timed too (the "fit" table): each library's default initialisation
(``init_params="kmeans"``: scikit-learn's ``KMeans(n_init=1)``, fastdensity's own k-means++ and
Lloyd on its parallel engine) and a fixed ``--fit-iters`` EM iterations (``tol=0``), from the same
``random_state``, alternating within each repeat, medians; it prints both lower bounds (the fit
quality: fastdensity's k-means should do at least as well) and fastdensity's ``fit(max_iter=1)``.

It also times the initialisations against one EM iteration: k-means++ seeding (fastdensity's
parallel engine, which draws the same rows as scikit-learn's, against
``sklearn.cluster.kmeans_plusplus``), fastdensity's k-means and scikit-learn's
``KMeans(n_init=1)``, and checks that both libraries reach the same parameters
(max relative difference of weights, means, covariances and the lower bound).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

from _tee import Tee  # noqa: E402  (bench/, the script's folder, is on sys.path)

import fastdensity.mixture as fdm  # noqa: E402

TARGETS = {"full": 4.0, "diag": 6.0}  # per EM iteration
FIT_TARGETS = {"full": 5.0, "diag": 5.0}  # the whole fit (kmeans init + --fit-iters iterations)


def make_data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    mixing = rng.normal(size=(k, d, d)) / np.sqrt(d)
    labels = rng.integers(0, k, size=n)
    X = centres[labels] + np.einsum("ni,nij->nj", rng.standard_normal((n, d)), mixing[labels])
    return X


def initial_parameters(X, k, covariance_type, seed=0):
    from sklearn.mixture import GaussianMixture

    sub = X[np.random.default_rng(seed).choice(X.shape[0], size=min(X.shape[0], 20000), replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(k, covariance_type=covariance_type, max_iter=3, random_state=seed).fit(sub)
    return dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)


def fit_seconds(cls, X, k, covariance_type, init, max_iter, n_jobs=None):
    model = cls(k, covariance_type=covariance_type, tol=0.0, max_iter=max_iter, **init)
    if n_jobs is not None and "n_jobs" in model.get_params():
        model.set_params(n_jobs=n_jobs)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return time.perf_counter() - wall0, time.process_time() - cpu0, model


def max_rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def compare_case(tee, X, k, covariance_type, repeats, m1, m2, single_thread=False):
    from sklearn.mixture import GaussianMixture as SkGM
    from threadpoolctl import threadpool_limits

    n_jobs = 1 if single_thread else None
    limits = threadpool_limits(limits=1) if single_thread else contextlib.nullcontext()
    with limits:
        return _compare_case(tee, X, k, covariance_type, repeats, m1, m2, n_jobs, SkGM)


def _compare_case(tee, X, k, covariance_type, repeats, m1, m2, n_jobs, SkGM):
    init = initial_parameters(X, k, covariance_type)
    fit_seconds(fdm.GaussianMixture, X[:4096], k, covariance_type, init, 1)  # compile / load cache
    per_iter = {"fastdensity": [], "scikit-learn": []}
    per_iter_cpu = {"fastdensity": [], "scikit-learn": []}
    models = {}
    for _ in range(repeats):
        for name, cls in (("fastdensity", fdm.GaussianMixture), ("scikit-learn", SkGM)):
            w1, c1, _ = fit_seconds(cls, X, k, covariance_type, init, m1, n_jobs)
            w2, c2, model = fit_seconds(cls, X, k, covariance_type, init, m2, n_jobs)
            per_iter[name].append((w2 - w1) / (m2 - m1))
            per_iter_cpu[name].append((c2 - c1) / (m2 - m1))
            models[name] = model
    ours, theirs = models["fastdensity"], models["scikit-learn"]
    diff = max(max_rel(ours.means_, theirs.means_), max_rel(ours.covariances_, theirs.covariances_),
               max_rel(ours.weights_, theirs.weights_),
               abs(ours.lower_bound_ - theirs.lower_bound_) / abs(theirs.lower_bound_))
    t_fd, t_sk = np.median(per_iter["fastdensity"]), np.median(per_iter["scikit-learn"])
    c_fd, c_sk = np.median(per_iter_cpu["fastdensity"]), np.median(per_iter_cpu["scikit-learn"])
    ratio = t_sk / t_fd
    target = TARGETS.get(covariance_type)
    verdict = "" if target is None else (f"target >= {target:.0f}x: " + ("met" if ratio >= target else "NOT met"))
    tee(f"{covariance_type:<9} {t_fd * 1e3:9.1f} {t_sk * 1e3:9.1f} {ratio:7.2f}x   "
        f"{c_fd * 1e3:9.1f} {c_sk * 1e3:9.1f} {c_sk / c_fd:7.2f}x   {diff:9.1e}   {verdict}")
    tee(f"{'':9} walls fastdensity {', '.join(f'{t * 1e3:.1f}' for t in per_iter['fastdensity'])} ms; "
        f"scikit-learn {', '.join(f'{t * 1e3:.1f}' for t in per_iter['scikit-learn'])} ms")
    return t_fd


def compare_fit(tee, X, k, covariance_type, repeats, n_iter):
    """The whole fit, each library's default init_params="kmeans", n_iter EM iterations (tol=0)."""
    from sklearn.mixture import GaussianMixture as SkGM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fdm.GaussianMixture(k, covariance_type=covariance_type, max_iter=1, random_state=0).fit(X[:4096])  # compile
    walls = {"fastdensity": [], "scikit-learn": []}
    bounds = {"fastdensity": [], "scikit-learn": []}
    one = []
    for r in range(repeats):
        for name, cls in (("fastdensity", fdm.GaussianMixture), ("scikit-learn", SkGM)):
            model = cls(k, covariance_type=covariance_type, max_iter=n_iter, tol=0.0, random_state=r)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X)
            walls[name].append(time.perf_counter() - t0)
            bounds[name].append(model.lower_bound_)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fdm.GaussianMixture(k, covariance_type=covariance_type, max_iter=1, random_state=r).fit(X)
        one.append(time.perf_counter() - t0)
    t_fd, t_sk = np.median(walls["fastdensity"]), np.median(walls["scikit-learn"])
    ratio = t_sk / t_fd
    target = FIT_TARGETS.get(covariance_type)
    verdict = "" if target is None else (f"target >= {target:.0f}x: " + ("met" if ratio >= target else "NOT met"))
    tee(f"{covariance_type:<9} {t_fd:9.2f} {t_sk:9.2f} {ratio:7.2f}x   {np.median(one):9.3f}   {verdict}")
    tee(f"{'':9} walls fastdensity {', '.join(f'{t:.2f}' for t in walls['fastdensity'])} s; "
        f"scikit-learn {', '.join(f'{t:.2f}' for t in walls['scikit-learn'])} s")
    tee(f"{'':9} lower bounds (seeds 0..{repeats - 1}) fastdensity "
        f"{', '.join(f'{b:.5f}' for b in bounds['fastdensity'])}; scikit-learn "
        f"{', '.join(f'{b:.5f}' for b in bounds['scikit-learn'])}")


def _median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_initialisations(tee, X, k, em_iteration_seconds, repeats):
    from sklearn.cluster import KMeans, kmeans_plusplus

    from fastdensity.mixture._kmeans_cpu import kmeans as fd_kmeans
    from fastdensity.mixture._kmeans_plusplus_cpu import kmeans_plusplus as fd_kmeans_plusplus

    fd_kmeans_plusplus(X[:4096], k, None, np.random.RandomState(0))  # compile / load cache
    same = all(
        np.array_equal(fd_kmeans_plusplus(X, k, None, np.random.RandomState(seed))[1],
                       kmeans_plusplus(X, k, random_state=seed)[1])
        for seed in range(2)
    )
    rows = [
        ("k-means++, fastdensity (parallel engine)",
         _median_seconds(lambda: fd_kmeans_plusplus(X, k, None, np.random.RandomState(0)), repeats)),
        ("k-means++, sklearn.cluster.kmeans_plusplus",
         _median_seconds(lambda: kmeans_plusplus(X, k, random_state=0), repeats)),
        ("k-means (init_params='kmeans'), fastdensity",
         _median_seconds(lambda: fd_kmeans(X, k, None, np.random.RandomState(0)), repeats)),
        ("KMeans(n_init=1), scikit-learn",
         _median_seconds(lambda: KMeans(k, n_init=1, random_state=0).fit(X), repeats)),
    ]
    for name, t in rows:
        tee(f"  {name:<46} {t * 1e3:9.1f} ms = {t / em_iteration_seconds:5.1f} fastdensity EM iterations (full)")
    tee(f"  k-means++: same rows as scikit-learn for the same seed: {same}; "
        f"fastdensity/sklearn time ratio {rows[0][1] / rows[1][1]:.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cov-types", default="full,diag,tied,spherical",
                        help="comma-separated covariance types for the all-cores table")
    parser.add_argument("--fit-iters", type=int, default=20, help="EM iterations of the whole-fit table")
    parser.add_argument("--fit-repeats", type=int, default=3)
    parser.add_argument("--fit-cov-types", default="full,diag")
    parser.add_argument("--no-single-thread", action="store_true", help="skip the one-thread table")
    parser.add_argument("--out", default=None)
    parser.add_argument("--append", action="store_true", help="append to --out instead of replacing it")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.d, args.k, args.repeats, args.fit_repeats, args.fit_iters = 5000, 4, 3, 1, 1, 3
    tee = Tee(args.out, args.append)
    import numba
    import sklearn
    from threadpoolctl import threadpool_info

    blas = ", ".join(f"{i.get('internal_api')} {i.get('num_threads')} threads" for i in threadpool_info())
    tee(f"# GaussianMixture: time per EM iteration, fastdensity vs scikit-learn "
        f"({datetime.datetime.now().isoformat(timespec='seconds')})")
    tee(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; numba {numba.__version__} "
        f"({numba.get_num_threads()} threads), scikit-learn {sklearn.__version__} (BLAS: {blas}), numpy {np.__version__}")
    tee(f"# n = {args.n:,}, d = {args.d}, k = {args.k}; same initial parameters, tol = 0; "
        f"per iteration = (T(max_iter=12) − T(max_iter=2)) / 10, median of {args.repeats} alternating repeats")
    X = make_data(args.n, args.d, args.k)
    m1, m2 = (1, 3) if args.quick else (2, 12)
    tee(f"# load average before: {os.getloadavg()[0]:.2f}")
    tee("")
    header = (f"{'cov type':<9} {'fd ms':>9} {'sk ms':>9} {'ratio':>8}   {'fd cpu':>9} {'sk cpu':>9} "
              f"{'ratio':>8}   {'max rel Δ':>9}")
    tee("## all cores (fastdensity: Numba threads; scikit-learn: BLAS threads); ms per EM iteration")
    tee(header)
    t_full = None
    for covariance_type in filter(None, args.cov_types.split(",")):
        t = compare_case(tee, X, args.k, covariance_type, args.repeats, m1, m2)
        if covariance_type == "full":
            t_full = t
    tee(f"# load average: {os.getloadavg()[0]:.2f}")
    tee("")
    tee(f"## the whole fit (all cores): init_params='kmeans' (each library's) + {args.fit_iters} EM iterations, "
        f"tol=0; seconds, median of {args.fit_repeats} alternating repeats; fd fit1 = fastdensity fit(max_iter=1)")
    tee(f"{'cov type':<9} {'fd s':>9} {'sk s':>9} {'ratio':>8}   {'fd fit1':>9}")
    for covariance_type in args.fit_cov_types.split(","):
        compare_fit(tee, X, args.k, covariance_type, args.fit_repeats, args.fit_iters)
    tee(f"# load average: {os.getloadavg()[0]:.2f}")
    tee("")
    if not args.no_single_thread:
        tee("## one thread each (the ratio of the work); ms per EM iteration")
        tee(header)
        for covariance_type in ("full", "diag"):
            compare_case(tee, X, args.k, covariance_type, args.repeats, m1, m2, single_thread=True)
        tee(f"# load average: {os.getloadavg()[0]:.2f}")
        tee("")
    if t_full is not None:
        tee("## initialisations (all cores), against one fastdensity EM iteration (full)")
        time_initialisations(tee, X, args.k, t_full, max(1, min(args.repeats, 3)))
    tee(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
