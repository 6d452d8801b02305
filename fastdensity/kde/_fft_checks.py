"""What the binned FFT grid computes (``evaluate_grid``, ``algorithm="fft"``): the checks made before
any work, shared by the grid's modules and by ``_algorithm`` (kept apart so that neither imports
the other)."""

from __future__ import annotations

MAX_GRID_DIMS = 3  # the FFT grid's dimensions at most (its size grows as nodes^d)


def check_grid_model(est, d, what):
    """Refuse, before any work, a model the grid does not compute: d > 3, a non-euclidean metric,
    adaptive bandwidths."""
    if d > MAX_GRID_DIMS:
        raise ValueError(f"{what} works for data with at most {MAX_GRID_DIMS} features; the data have {d}")
    metric = est._metric_spec(d)[0]
    if metric != "euclidean":
        raise ValueError(f"{what} needs the euclidean metric; got metric={est.metric!r}")
    if est.adaptive:
        raise ValueError(f"{what} needs a fixed bandwidth; got adaptive=True (use algorithm='exact')")
