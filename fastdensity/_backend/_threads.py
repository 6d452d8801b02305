"""Thread control for the Numba kernels."""

from __future__ import annotations

import contextlib
import numbers

import numpy as np


def _max_threads() -> int:
    import numba

    return numba.config.NUMBA_NUM_THREADS


def resolve_n_jobs(n_jobs) -> int:
    """Translate scikit-learn's ``n_jobs`` convention (None → all, -1 → all, -2 → all but one)."""
    max_threads = _max_threads()
    if n_jobs is None:
        return max_threads
    if isinstance(n_jobs, (bool, np.bool_)) or not isinstance(n_jobs, numbers.Integral):
        raise TypeError(f"n_jobs must be an int or None; got {n_jobs!r}")
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs must not be 0; use None or -1 for all cores, or a positive count")
    if n_jobs < 0:
        return max(1, max_threads + 1 + n_jobs)
    return min(n_jobs, max_threads)


@contextlib.contextmanager
def threads(n_jobs=None):
    """Run the enclosed fastdensity calls on ``n_jobs`` threads (scikit-learn's convention:
    -1 all cores, -2 all but one; ``None`` leaves the current count unchanged).

    >>> import fastdensity
    >>> with fastdensity.threads(1):
    ...     pass
    """
    import numba

    if n_jobs is None:
        # An estimator left at n_jobs=None follows the surrounding setting (all cores by default,
        # or an enclosing ``threads(n)``) instead of overriding it.
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(resolve_n_jobs(n_jobs))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


