"""Kernel Inception Distance: the unbiased polynomial-kernel MMD² between two feature sets.

Bińkowski, Sutherland, Arbel & Gretton (2018), "Demystifying MMD GANs": with the kernel
k(x, y) = (γ x·y + coef0)^degree (γ = 1/d by default, degree 3, coef0 1) and two subsets
X, Y of m rows each, the unbiased estimate of MMD² is

    1/(m(m−1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i, y_j) − 2/m² Σ_{i,j} k(x_i, y_j).

KID is its mean over ``subsets`` random subsets (drawn without replacement within a subset), as
in the reference implementation and torch-fidelity; the standard deviation over the subsets is
reported with it. Unlike FID, the estimate is unbiased: its expectation is 0 when both sets come
from one distribution, so it can come out slightly negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._backend._namespace import common_kind
from .._backend._validation import Integer, Real, check_parameter
from ._dask_features import any_dask
from ._fid import _as_float64, check_features

__all__ = ["KIDResult", "kid", "polynomial_mmd2"]


@dataclass(frozen=True)
class KIDResult:
    """Result of :func:`kid`.

    Attributes
    ----------
    mean : float
        KID: the mean of the unbiased MMD² estimates over the subsets.
    std : float
        Their standard deviation over the subsets (ddof = 0, as torch-fidelity). The subsets
        overlap, so ``std / sqrt(subsets)`` understates the standard error of ``mean``.
    values : ndarray of shape (subsets,)
        The MMD² estimate of each subset.
    """

    mean: float
    std: float
    values: np.ndarray = field(repr=False)


def polynomial_mmd2(X, Y, degree=3, gamma=None, coef0=1.0):
    """Unbiased MMD² estimate between ``X`` (m, d) and ``Y`` (n, d) with the polynomial kernel
    (γ x·y + coef0)^degree, γ = 1/d when None. Float64 on the inputs' device; returns a float.

    ``X`` and ``Y`` need at least 2 rows each (they may differ in size). In-memory arrays only
    (it forms the full kernel matrices); for dask arrays use :func:`kid`.
    """
    if any_dask(X, Y):
        raise TypeError("polynomial_mmd2 takes in-memory arrays (it forms m × n kernel matrices); for "
                        "feature sets held as dask arrays use kid(), which gathers only subsets")
    kind = common_kind(X, Y)
    X = check_features(X, "X", min_samples=2, kind=kind)
    Y = _as_float64(Y, kind, X)
    Y = check_features(Y, "Y", min_samples=2, kind=kind)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features and Y {Y.shape[1]}; they must match")
    degree, gamma, coef0 = _check_kernel(degree, gamma, coef0, X.shape[1])
    return _mmd2(X, Y, degree, gamma, coef0)


def _mmd2(X, Y, degree, gamma, coef0):
    m, n = X.shape[0], Y.shape[0]
    k_xx = (X @ X.T * gamma + coef0) ** degree
    k_yy = (Y @ Y.T * gamma + coef0) ** degree
    k_xy = (X @ Y.T * gamma + coef0) ** degree
    sum_xx = float(k_xx.sum()) - float(k_xx.diagonal().sum())
    sum_yy = float(k_yy.sum()) - float(k_yy.diagonal().sum())
    return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * float(k_xy.sum()) / (m * n)


def _check_kernel(degree, gamma, coef0, d):
    degree = check_parameter("degree", degree, Integer(1))
    gamma = check_parameter("gamma", gamma, Real(0, low_open=True, none=True))
    coef0 = check_parameter("coef0", coef0, Real())
    return degree, 1.0 / d if gamma is None else gamma, coef0


def _check_count(value, name, minimum):
    return check_parameter(name, value, Integer(minimum))


def kid(features_real, features_fake, subsets=100, subset_size=1000, degree=3, gamma=None, coef0=1,
        random_state=None):
    """Kernel Inception Distance: the unbiased polynomial-kernel MMD², mean and std over subsets.

    Parameters
    ----------
    features_real, features_fake : array of shape (n_real, d) and (n_fake, d)
        Features of the two sets (NumPy arrays, torch tensors on the CPU or a GPU, CuPy arrays);
        computed in float64 on their device. Dask arrays (either or both) stay on the workers:
        each subset's rows are gathered there and only the MMD² values come back; the same seed
        gives the same subsets and values as in memory (see ``fastdensity.metrics._kid_dask``).
    subsets : int, default=100
        Number of random subset pairs.
    subset_size : int, default=1000
        Rows per subset (drawn without replacement from each set). Must not exceed either set's
        size: a ``ValueError`` says so (as torch-fidelity; pass ``subset_size=min(n_real,
        n_fake)`` for small sets).
    degree : int, default=3
    gamma : float or None, default=None
        Kernel scale; None means 1 / d.
    coef0 : float, default=1
    random_state : int, numpy Generator or None
        Seeds the subset draws (``np.random.default_rng(random_state)``).

    Returns
    -------
    KIDResult
        ``mean``, ``std`` and the per-subset ``values``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> r = kid(rng.standard_normal((300, 8)), rng.standard_normal((300, 8)), subsets=20,
    ...         subset_size=100, random_state=0)
    >>> abs(r.mean) < 0.05
    True
    """
    on_dask = any_dask(features_real, features_fake)
    if on_dask:
        from ._kid_dask import check_dask_pair

        X, Y = check_dask_pair(features_real, features_fake)
    else:
        kind = common_kind(features_real, features_fake)
        X = check_features(features_real, "features_real", min_samples=2, kind=kind)
        Y = check_features(_as_float64(features_fake, kind, X), "features_fake", min_samples=2, kind=kind)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"features_real has {X.shape[1]} features and features_fake {Y.shape[1]}; they must match"
        )
    subsets = _check_count(subsets, "subsets", 1)
    subset_size = _check_count(subset_size, "subset_size", 2)
    if subset_size > X.shape[0] or subset_size > Y.shape[0]:
        raise ValueError(
            f"subset_size = {subset_size} is larger than the feature sets (features_real has "
            f"{X.shape[0]} rows, features_fake {Y.shape[0]}); use subset_size <= "
            f"{min(X.shape[0], Y.shape[0])}"
        )
    degree, gamma, coef0 = _check_kernel(degree, gamma, coef0, X.shape[1])
    rng = np.random.default_rng(random_state)
    if on_dask:
        from ._kid_dask import kid_values

        values = kid_values(X, Y, subsets, subset_size, _mmd2, degree, gamma, coef0, rng)
        return KIDResult(mean=float(values.mean()), std=float(values.std()), values=values)
    values = np.empty(subsets)
    for s in range(subsets):
        # Index arrays are drawn on the host; rows are gathered on the data's device.
        ix = rng.choice(X.shape[0], subset_size, replace=False)
        iy = rng.choice(Y.shape[0], subset_size, replace=False)
        values[s] = _mmd2(X[_index(ix, X)], Y[_index(iy, Y)], degree, gamma, coef0)
    return KIDResult(mean=float(values.mean()), std=float(values.std()), values=values)


def _index(idx, like):
    """Host indices usable on ``like``'s device (torch and CuPy index with their own arrays)."""
    module = type(like).__module__
    if module.startswith("torch"):
        import torch

        return torch.as_tensor(idx, device=like.device)
    if module.startswith("cupy"):
        import cupy

        return cupy.asarray(idx)
    return idx
