"""pytest-benchmark suites for GaussianMixture.

    pytest bench/test_bench_mixture.py                                  # time (a few minutes)
    FASTDENSITY_BENCH_QUICK=1 pytest bench --benchmark-disable          # CI: every body once

The EM benchmarks fit from fixed initial parameters (``weights_init``, ``means_init``,
``precisions_init``) with ``tol=0`` and a fixed ``max_iter``, so every round runs the same
iterations; ``extra_info["seconds_per_iteration"]`` is the median time / max_iter (it includes
the per-fit work, validation and the final E-step, so it slightly overstates an iteration;
``bench/compare_mixture.py`` measures the iteration alone, against scikit-learn).
Each benchmark compiles (or loads from the Numba cache) its kernels before the timed part.

These are measurements, not assertions: no test fails because the machine is slow.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from fastdensity.mixture import GaussianMixture

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("FASTDENSITY_BENCH_QUICK", "") not in ("", "0")

# (n, d, k). Quick mode keeps the code paths (several chunks, padded dimensions) and shrinks n.
if QUICK:
    EM_CASE = (5000, 5, 3)
    SCORE_CASE = (5000, 5, 3)
    MAX_ITER, ROUNDS = 2, 1
else:
    EM_CASE = (200_000, 16, 16)
    SCORE_CASE = (200_000, 16, 16)
    MAX_ITER, ROUNDS = 5, 3
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    labels = rng.integers(0, k, size=n)
    return centres[labels] + rng.standard_normal((n, d))


def _init(X, k, covariance_type):
    """Initial parameters from two EM iterations on a subsample (fastdensity's own)."""
    sub = X[: min(len(X), 20000)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(k, covariance_type=covariance_type, max_iter=2, random_state=0).fit(sub)
    return dict(weights_init=gm.weights_, means_init=gm.means_, precisions_init=gm.precisions_)


def _record(benchmark, n, d, k, per=1):
    benchmark.extra_info.update(n=n, d=d, k=k)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None with --benchmark-disable
        benchmark.extra_info["seconds_per_iteration"] = stats.stats.median / per


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_iterations(benchmark, covariance_type):
    """``fit`` from fixed initial parameters, MAX_ITER EM iterations (fused E-step + M-step)."""
    n, d, k = EM_CASE
    X = _data(n, d, k)
    init = _init(X, k, covariance_type)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return GaussianMixture(k, covariance_type=covariance_type, max_iter=MAX_ITER, tol=0.0, **init).fit(X)

    fit()  # warm-up: compiles or loads the kernels
    benchmark.group = f"EM n={n} d={d} k={k}"
    model = benchmark.pedantic(fit, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _record(benchmark, n, d, k, per=MAX_ITER)
    assert model.n_iter_ == MAX_ITER and np.isfinite(model.lower_bound_)


@pytest.mark.parametrize("method", ["score_samples", "predict_proba"])
def test_scoring(benchmark, method):
    """Scoring a fitted full-covariance model: the normaliser alone, or the (n, k) posteriors."""
    n, d, k = SCORE_CASE
    X = _data(n, d, k)
    model = GaussianMixture(k, max_iter=0, **_init(X, k, "full")).fit(X)
    getattr(model, method)(X[:100])
    benchmark.group = f"scoring n={n} d={d} k={k}"
    out = benchmark.pedantic(getattr(model, method), args=(X,), rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _record(benchmark, n, d, k)
    assert np.all(np.isfinite(out))


def test_partial_fit_step(benchmark):
    """One online-EM step on a mini-batch of 10,000 rows (quick: 1,000)."""
    n, d, k = EM_CASE
    X = _data(n, d, k)
    batch = X[: 1000 if QUICK else 10000]
    model = GaussianMixture(k, **_init(X, k, "full")).partial_fit(batch)
    benchmark.group = "partial_fit"
    benchmark.pedantic(model.partial_fit, args=(batch,), rounds=ROUNDS * 3, iterations=1, warmup_rounds=0)
    _record(benchmark, len(batch), d, k)
    assert model.n_steps_ >= 2


def test_kmeans_plusplus_init(benchmark):
    """``init_params="k-means++"`` with max_iter=0: the parallel seeding plus the initial M-step."""
    n, d, k = EM_CASE
    X = _data(n, d, k)

    def init():
        return GaussianMixture(k, init_params="k-means++", max_iter=0, random_state=0).fit(X)

    init()
    benchmark.group = "initialisation"
    model = benchmark.pedantic(init, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _record(benchmark, n, d, k)
    assert model.n_iter_ == 0


@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_initialisation(benchmark, init_params):
    """``max_iter=0`` with init_params "kmeans" (our k-means++ seeds and Lloyd steps on the
    parallel engine, then the initial statistics in one engine pass) or "random" (two passes)."""
    n, d, k = EM_CASE
    X = _data(n, d, k)

    def init():
        return GaussianMixture(k, init_params=init_params, max_iter=0, random_state=0).fit(X)

    init()
    benchmark.group = "initialisation"
    model = benchmark.pedantic(init, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _record(benchmark, n, d, k)
    assert model.n_iter_ == 0


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_whole_fit(benchmark, covariance_type):
    """The whole default fit: init_params="kmeans" and MAX_ITER EM iterations (tol=0)."""
    n, d, k = EM_CASE
    X = _data(n, d, k)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return GaussianMixture(k, covariance_type=covariance_type, max_iter=MAX_ITER, tol=0.0,
                                   random_state=0).fit(X)

    fit()
    benchmark.group = f"whole fit n={n} d={d} k={k}"
    model = benchmark.pedantic(fit, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    _record(benchmark, n, d, k)
    assert model.n_iter_ == MAX_ITER and np.isfinite(model.lower_bound_)
