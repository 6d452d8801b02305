"""Per-column minimum and maximum of an (n, d) array, fast for the narrow data KDEs see.

NumPy's ``X.min(axis=0)`` on a C-ordered (n, d) array with few columns runs at a few tens of
millions of elements per second: it reduces along the outer axis, d elements at a time (measured
with numpy 2.4: 2.6 ms for 10⁵ × 2 float64, 28 µs for 1000 × 2). A 1-D reduction per column
runs vectorised along the column's stride instead (70 µs and 5 µs); from about 32 columns the
axis-0 reduction catches up and is used. GPU arrays reduce on their device.
"""

from __future__ import annotations

import numpy as np

__all__ = ["column_extremes"]

_PER_COLUMN_BELOW = 32


def column_extremes(X):
    """(min, max) of each column of ``X`` (n ≥ 1, d), each a (d,) array of ``X``'s namespace."""
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] < _PER_COLUMN_BELOW:
        columns = range(X.shape[1])
        return (np.array([X[:, j].min() for j in columns], dtype=X.dtype),
                np.array([X[:, j].max() for j in columns], dtype=X.dtype))
    return X.min(axis=0), X.max(axis=0)
