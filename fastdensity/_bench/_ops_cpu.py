"""The public calls the throughput guard times on the CPU, with sizes that take a few hundred ms.

Each entry of :data:`CPU_OPS` builds its inputs once (fits the model outside the timed part) and
returns a :class:`Case`: the public call, its arguments (the first one is row-indexed, so that a
planted slowdown can add work by calling again on a fraction of the rows), the amount of work of
one call in the op's units, and the probe its rate is divided by.

Sizes are chosen so that one call takes 0.1–0.5 s on a 2-core machine: long enough to dwarf the
call overhead and the timer, short enough that the whole guard, with repetitions, stays within a
couple of minutes. ``quick`` shrinks every size about tenfold (for ``fastdensity bench --quick``
and smoke tests); quick and full numbers are never compared with each other.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class Case:
    """One ready-to-time public call."""

    call: Callable
    args: tuple
    work: float  # units of work of one call (pair evaluations, rows x components, ...)
    units: str
    probe: str  # "exp" or "dgemm"
    # Added to the guard's threshold for this op alone: its measured run-to-run variation on an
    # unchanged tree exceeds the common threshold (see bench/README.md, "Choosing the threshold").
    extra_threshold: float = 0.0

    def __call__(self):
        return self.call(*self.args)

    def planted(self, fraction: float):
        """The same call, then the same call again on ``fraction`` of the rows (whole extra calls
        for each unit of ``fraction`` above 1): a slowdown of about ``1 + fraction`` inside the timed
        public work, used to show that the guard catches one."""
        first, rest = self.args[0], self.args[1:]
        whole, part = divmod(float(fraction), 1.0)
        rows = int(round(part * first.shape[0]))

        def slower():
            result = self.call(*self.args)
            for _ in range(int(whole)):
                self.call(*self.args)
            if rows > 0:
                self.call(first[:rows], *rest)
            return result

        return slower


def _normal(rng, n, d, dtype=np.float64):
    return rng.standard_normal((n, d)).astype(dtype)


def _kde(kernel, dtype, d, quick):
    import fastdensity as fd

    rng = np.random.default_rng(1)
    n, m = (4000, 3000) if quick else (24000, 16000)
    if d >= 8:
        m //= 2
    # float32 runs about 2.5x faster, a compact kernel skips most exps: more queries for both.
    m *= (3 if dtype == np.float32 else 1) * (1 if kernel == "gaussian" else 4)
    X, Q = _normal(rng, n, d, dtype), _normal(rng, m, d, dtype)
    # algorithm="exact": the op guards the exact engine its baseline measured ("auto" now picks
    # the compact kernels' tree at this size).
    kde = fd.KernelDensity(kernel=kernel, bandwidth=float(n ** (-1.0 / (d + 4))), algorithm="exact").fit(X)
    kde.score_samples(Q[:64])  # compile or load the kernels outside the timed part
    return Case(kde.score_samples, (Q,), float(n) * m, "pairs", "exp")


def _knn(d, quick):
    import fastdensity as fd

    rng = np.random.default_rng(2)
    n, m = (20000, 20000) if quick else (200000, 160000)
    if d >= 16:
        n, m = (5000, 2000) if quick else (40000, 10000)
    X, Q = _normal(rng, n, d), _normal(rng, m, d)
    knn = fd.KNNDensity(n_neighbors=10).fit(X)
    knn.score_samples(Q[:64])
    # At d = 16 the search runs through float32 GEMM tiles and a selection pass whose memory traffic
    # shares the L3 with the machine's other tenants: five unchanged runs on an idle 2-core VM gave
    # 0.87-1.04 of the baseline (the other ops 0.91-1.14), so it gets 8 points more.
    extra = 0.08 if d >= 16 else 0.0
    return Case(knn.score_samples, (Q,), float(n) * m, "pairs", "dgemm", extra_threshold=extra)


def _blobs(rng, n, d, k):
    centres = rng.standard_normal((k, d)) * 4.0
    labels = rng.integers(0, k, size=n)
    return centres[labels] + rng.standard_normal((n, d))


_GMM_ITERATIONS = 10


def _gmm_fit(covariance_type, quick):
    import fastdensity as fd

    rng = np.random.default_rng(3)
    n, d, k = (10000, 8, 8) if quick else (60000, 16, 16)
    X = _blobs(rng, n, d, k)

    def fit(data):
        # A fixed number of iterations (tol=0), so that the work does not depend on convergence.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fd.GaussianMixture(
                n_components=k, covariance_type=covariance_type, max_iter=_GMM_ITERATIONS,
                tol=0.0, random_state=0,
            ).fit(data)

    fit(X[:2000])
    return Case(fit, (X,), float(n) * k * _GMM_ITERATIONS, "row-components", "dgemm")


def _gmm_score(covariance_type, quick):
    import fastdensity as fd

    rng = np.random.default_rng(4)
    n, d, k = (10000, 8, 8) if quick else (40000, 16, 16)
    m = 50000 if quick else 400000
    if covariance_type == "diag":
        m *= 3
    gmm = fd.GaussianMixture(n_components=k, covariance_type=covariance_type, max_iter=5,
                             random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gmm.fit(_blobs(rng, n, d, k))
    Q = _blobs(rng, m, d, k)
    gmm.score_samples(Q[:64])
    return Case(gmm.score_samples, (Q,), float(m) * k, "row-components", "dgemm")


def _gaussian_kde(quick):
    import fastdensity as fd

    rng = np.random.default_rng(5)
    n, m = (4000, 3000) if quick else (24000, 16000)
    data, points = rng.standard_normal((2, n)), rng.standard_normal((m, 2))
    kde = fd.gaussian_kde(data)
    kde.logpdf(points[:64].T)
    # logpdf takes (d, m): the row-indexed argument of the case is (m, d), transposed in the call.
    return Case(lambda p: kde.logpdf(p.T), (points,), float(n) * m, "pairs", "exp")


def _fid(quick):
    from fastdensity.metrics import fid

    rng = np.random.default_rng(6)
    n, d = (2000, 64) if quick else (10000, 256)
    real, fake = rng.standard_normal((n, d)), rng.standard_normal((n, d)) * 1.1 + 0.05
    fid(real[:500], fake[:500])
    # Work: two covariance products (2 n d^2 flop each) dominate at this size.
    return Case(fid, (real, fake), 4.0 * n * d * d, "flop", "dgemm")


def _prdc(quick):
    from fastdensity.metrics import prdc

    rng = np.random.default_rng(7)
    n, d = (1000, 64) if quick else (6000, 64)
    real, fake = rng.standard_normal((n, d)), rng.standard_normal((n, d)) * 1.1 + 0.05
    prdc(real[:200], fake[:200], nearest_k=5)
    # Work: the real-real, fake-fake and real-fake distance passes.
    return Case(lambda r, f: prdc(r, f, nearest_k=5), (real, fake), 3.0 * n * n, "pairs", "dgemm")


# name -> builder(quick) -> Case. The order is the order of the table.
CPU_OPS: dict[str, Callable[[bool], Case]] = {
    "kde_gaussian_f64_d2": lambda q: _kde("gaussian", np.float64, 2, q),
    "kde_gaussian_f32_d2": lambda q: _kde("gaussian", np.float32, 2, q),
    "kde_gaussian_f64_d8": lambda q: _kde("gaussian", np.float64, 8, q),
    "kde_gaussian_f32_d8": lambda q: _kde("gaussian", np.float32, 8, q),
    "kde_epanechnikov_f64_d2": lambda q: _kde("epanechnikov", np.float64, 2, q),
    "knn_d2": lambda q: _knn(2, q),
    "knn_d16": lambda q: _knn(16, q),
    "gmm_fit_full": lambda q: _gmm_fit("full", q),
    "gmm_fit_diag": lambda q: _gmm_fit("diag", q),
    "gmm_score_full": lambda q: _gmm_score("full", q),
    "gmm_score_diag": lambda q: _gmm_score("diag", q),
    "gaussian_kde_logpdf_d2": _gaussian_kde,
    "fid": _fid,
    "prdc": _prdc,
}
