"""The unbounded log density of a fitted KernelDensity by its ``algorithm``: the binned FFT grid
(``algorithm="fft"``) or the engine's exact sums. The reflection estimator for ``bounds``
(``_boundary``) sums these over the images of the queries."""

from __future__ import annotations


def log_density(est, engine, X):
    """float64 log densities of the validated queries X (m, d) in ``engine.xp``, without bounds."""
    if est.algorithm == "fft":
        from ._fft_score import fft_log_density

        return fft_log_density(est, engine, X)
    return engine.log_density(est, X)
