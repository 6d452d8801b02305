"""What ``gaussian_kde`` refuses and how it says so: the dataset, the weights, too few points, and
a data covariance that is not positive definite (constant or collinear dimensions).

Where scipy raises, the message begins with scipy's own (users match on them) and goes on to name
the offending dimension or value and the remedies. The checks run on the engine's device (only
scalars and (d, d) reductions come to the host).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ._gaussian_kde_engines import _SCIPY_NOT_FINITE, _check_finite, _one_blas_thread

__all__ = [
    "HOST_ONLY", "SCIPY_BW", "check_dataset", "check_enough_points", "check_weights", "cholesky_or_explain",
]

# A dimension whose variance left after regressing it on the preceding dimensions is below this
# fraction of its own variance (1 - R² < 1e-13, about 450 float64 ulps) is collinear with them to
# working precision: the Cholesky factorisation of such a covariance succeeds or fails by rounding.
_SINGULAR_RTOL = 1e-13

# scipy's messages (users match on them); ours add the specifics and the remedies after them.
SCIPY_D_GT_N = (
    "Number of dimensions is greater than number of samples. This results in a singular data "
    "covariance matrix, which cannot be treated using the algorithms implemented in "
    "`gaussian_kde`. Note that `gaussian_kde` interprets each *column* of `dataset` to be a "
    "point; consider transposing the input to `dataset`."
)
SCIPY_SINGULAR = (
    "The data appears to lie in a lower-dimensional subspace of the space in which it is "
    "expressed. This has resulted in a singular data covariance matrix, which cannot be treated "
    "using the algorithms implemented in `gaussian_kde`. Consider performing principal component "
    "analysis / dimensionality reduction and using `gaussian_kde` with the transformed data."
)
SCIPY_FEW = "`dataset` input should have multiple elements."
SCIPY_BW = "`bw_method` should be 'scott', 'silverman', a scalar or a callable."
DEGENERATE_REMEDY = (
    "gaussian_kde needs data that span all d dimensions: drop the constant or collinear "
    "dimensions (or project the data onto its principal components), add a little jitter "
    "to the data, or pass more points than dimensions."
)
HOST_ONLY = (
    "gaussian_kde.{method} has no GPU implementation, and this kde's dataset is on the GPU (a "
    "CuPy array); GPU arrays are never copied to the host silently. Build a kde from host data "
    "for it: gaussian_kde(cupy.asnumpy(kde.dataset), bw_method=kde.factor, "
    "weights=cupy.asnumpy(kde.weights)) (backend='cpu'). On the GPU: evaluate, pdf, logpdf, "
    "__call__, resample, marginal, set_bandwidth."
)


def check_dataset(engine, dataset):
    """``dataset`` as a finite (d, n) array of the engine's namespace (1-D input: d = 1)."""
    xp = engine.xp
    data = engine.asarray(dataset, "dataset")
    if data.ndim > 2:
        raise ValueError(
            f"`dataset` must be 1-D (n,) or 2-D (d, n) with one point per column; "
            f"got an array of shape {data.shape}"
        )
    data = xp.atleast_2d(data)
    if not data.size > 1:
        raise ValueError(
            f"{SCIPY_FEW} Got {data.size} value(s) (shape {data.shape}); pass at least two points"
        )
    _check_finite(xp, data, "dataset")
    return data


def check_weights(engine, weights, n):
    """(float64 weights normalised to sum 1, the effective number of points) for ``n`` points:
    1-D, finite, non-negative, with at least two positive entries (scipy's messages first)."""
    xp = engine.xp
    w = xp.atleast_1d(engine.asarray(weights, "weights")).astype(xp.float64)
    if w.ndim != 1:
        raise ValueError(f"`weights` input should be one-dimensional. Got shape {w.shape}")
    if len(w) != n:
        raise ValueError(
            f"`weights` input should be of length n. Got length {len(w)} for n = {n} "
            "data points (one weight per column of `dataset`)"
        )
    if not bool(xp.isfinite(w).all()):
        raise ValueError("`weights` contains NaN or infinite values")
    if bool((w < 0).any()):
        raise ValueError("`weights` must be non-negative; got negative entries")
    total = xp.sum(w)
    if not float(total) > 0:
        raise ValueError("`weights` are all zero; at least two must be positive")
    if int(xp.count_nonzero(w)) < 2:
        raise ValueError(
            "`weights` has only one positive entry; a kernel covariance needs at least "
            "two points with positive weight"
        )
    w /= total
    return w, 1 / engine.inv_neff(w)


def check_enough_points(d, n):
    if d > n:
        raise np.linalg.LinAlgError(
            f"{SCIPY_D_GT_N} Here d = {d} dimensions and n = {n} points. {DEGENERATE_REMEDY}"
        )


def cholesky_or_explain(engine, dataset, weights, cov):
    """Lower Cholesky factor of the data covariance ``cov``, or an error that says what is wrong."""
    if not np.all(np.isfinite(cov)):
        raise ValueError(
            f"{_SCIPY_NOT_FINITE}: the data covariance overflowed (values too large for "
            "float64); rescale the data"
        )
    var = np.diag(cov)
    # Exactly constant over the points that carry weight (np.cov may round such a
    # dimension's variance to a tiny positive number), or zero variance.
    used = dataset[:, weights > 0]
    flat = engine.to_host((used == used[:, :1]).all(axis=1))
    constant = np.flatnonzero(flat | (var <= 0))
    if constant.size:
        raise np.linalg.LinAlgError(
            f"{SCIPY_SINGULAR} Here dimension(s) {constant.tolist()} of `dataset` are constant "
            f"(zero weighted variance). {DEGENERATE_REMEDY}"
        )
    try:
        with _one_blas_thread():
            chol = linalg.cholesky(cov, lower=True)
        bad = np.flatnonzero(np.diag(chol) ** 2 < _SINGULAR_RTOL * var)
        first = int(bad[0]) if bad.size else -1
    except np.linalg.LinAlgError:
        (potrf,) = linalg.get_lapack_funcs(("potrf",), (cov,))
        _, info = potrf(cov, lower=True)
        first = max(int(info) - 1, 0)
        chol = None
    if first >= 0:
        raise np.linalg.LinAlgError(
            f"{SCIPY_SINGULAR} Here dimension {first} of `dataset` is (to working precision) "
            f"a linear function of dimensions {list(range(first))}. {DEGENERATE_REMEDY}"
        )
    return chol
