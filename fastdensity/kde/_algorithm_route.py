"""The unbounded log density of a fitted KernelDensity by its ``algorithm``: the binned FFT grid
(``algorithm="fft"``, or "auto" where its cost model chose "fft") or the engine's sums (exact, or
the tree the engine itself routes to). The reflection estimator for ``bounds`` (``_boundary``)
sums these over the images of the queries."""

from __future__ import annotations


def runs_fft(est) -> bool:
    """Whether ``est`` scores by the fft grid: ``algorithm="fft"``, or "auto" fitted to "fft"."""
    if est.algorithm == "fft":
        return True
    return est.algorithm == "auto" and getattr(est, "effective_algorithm_", None) == "fft"


def log_density(est, engine, X):
    """float64 log densities of the validated queries X (m, d) in ``engine.xp``, without bounds."""
    if runs_fft(est):
        from ._fft_score import fft_log_density

        return fft_log_density(est, engine, X)
    return engine.log_density(est, X)
