"""KID of feature sets held as dask arrays: the in-memory subsets, gathered on the workers.

The subset indices are drawn on the host from the same generator, in the same order, as the
in-memory :func:`kid` draws them (for each subset, the real rows, then the fake rows), so a seed
gives the same subsets whatever holds the data. Each subset's rows are gathered by dask fancy
indexing (rows in the drawn order, as NumPy's ``X[ix]``) and its MMD² is computed on a worker by
the in-memory code on a C-contiguous copy, so the values are the in-memory ones; only the
scalars come back. Subsets are computed ``SUBSET_BATCH`` at a time, so at most that many pairs of
``subset_size`` × d subsets (and their kernel matrices) are held at once. The values are checked
finite in one pass over both sets, computed with the first batch (the in-memory checks read the
whole sets too).
"""

from __future__ import annotations

import numpy as np

from .._backend._dask import non_finite_count
from ._dask_features import dask_features

SUBSET_BATCH = 16  # subsets per compute


def _mmd2_rows(x, y, mmd2, degree, gamma, coef0):
    return mmd2(np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64),
                 degree, gamma, coef0)


def check_dask_pair(features_real, features_fake):
    """(real, fake) as float64 dask arrays, checked before any task (as the in-memory ``kid``)."""
    X = dask_features(features_real, "features_real", min_samples=2)
    Y = dask_features(features_fake, "features_fake", min_samples=2)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"features_real has {X.shape[1]} features and features_fake {Y.shape[1]}; they must match"
        )
    return X, Y


def kid_values(X, Y, subsets, subset_size, mmd2, degree, gamma, coef0, rng):
    """The MMD² (``mmd2(x, y, degree, gamma, coef0)``, the in-memory function) of each of
    ``subsets`` subset pairs of the dask arrays X and Y (checked), drawn from ``rng``."""
    import dask

    values = np.empty(subsets)
    for start in range(0, subsets, SUBSET_BATCH):
        parts = []
        for _ in range(start, min(subsets, start + SUBSET_BATCH)):
            ix = rng.choice(X.shape[0], subset_size, replace=False)
            iy = rng.choice(Y.shape[0], subset_size, replace=False)
            parts.append(dask.delayed(_mmd2_rows, pure=True)(X[ix], Y[iy], mmd2, degree, gamma, coef0))
        if start == 0:
            bad_x, bad_y, *got = dask.compute(non_finite_count(X), non_finite_count(Y), *parts)
            if bad_x:
                raise ValueError("features_real contains NaN or infinite values")
            if bad_y:
                raise ValueError("features_fake contains NaN or infinite values")
        else:
            got = dask.compute(*parts)
        values[start:start + len(got)] = got
    return values
