"""The device-side numerics of the CUDA KDE engine (``_engine_cuda.py``): engine state, rule and
"cv" bandwidths, whitening and sampling on CuPy arrays (the sums are in ``_kde_cuda``). Imported
only when the CUDA backend runs or a GPU-fitted model is used.

The data never leaves the device: the rules of thumb reduce it there to a (d, d) covariance, the
only thing that comes to the host, and "cv" to (n, g) leave-one-out sums; sampling draws on the
device with CuPy's random generator. The exception is "isj", 1-D only, which bins the column on
the host.
"""

from __future__ import annotations

import numpy as np

from .._backend._cuda import require_cupy
from .._backend._device import is_device_array
from . import _bandwidth
from ._bandwidth import _check_covariance, _check_support, scott_factor, silverman_factor
from . import _kernels
from ._kernels import kernel_coordinate_variance


def rule_bandwidth_matrix(X, weights, rule, kernel):
    """``_bandwidth.rule_bandwidth_matrix`` for "scott"/"silverman" with X (n, d) on the device."""
    cp = require_cupy("backend='cuda'")
    X = X.astype(cp.float64, copy=False)
    n, d = X.shape
    w = cp.ones(n) if weights is None else weights
    positive = w > 0
    count = int(positive.sum())
    # The same checks and messages as on the CPU, fed with what they read: the number of points
    # with positive weight, and their per-feature range (a 2-row stand-in of min and max).
    _check_support(np.empty((min(count, d + 1), d)), None)
    support = X[positive]
    v1 = float(w.sum())
    denom = v1 - float((w * w).sum()) / v1
    if not denom > 0:
        raise ValueError("the covariance needs at least 2 points with positive weight; pass a float bandwidth")
    mean = (w @ X) / v1
    Xc = X - mean
    cov = ((Xc * w[:, None]).T @ Xc / denom).get()
    cov = 0.5 * (cov + cov.T)
    _check_covariance(cov, np.stack([support.min(axis=0).get(), support.max(axis=0).get()]))
    wn = w / v1
    neff = float(n) if weights is None else float(1.0 / (wn * wn).sum())
    factor = scott_factor(neff, d) if rule == "scott" else silverman_factor(neff, d)
    return cov * (factor * factor / kernel_coordinate_variance(kernel, d))


def whiten(chol, X):
    """L⁻¹ xᵢ for every row of the device array X (float64 result), as ``_bandwidth.whiten``."""
    cp = require_cupy("backend='cuda'")
    X = X.astype(cp.float64, copy=False)
    diag = np.diagonal(chol)
    if np.count_nonzero(chol - np.diag(diag)) == 0:
        return X / cp.asarray(diag)
    from cupyx.scipy.linalg import solve_triangular

    return cp.ascontiguousarray(solve_triangular(cp.asarray(chol), X.T, lower=True).T)


def sample(train, sample_weight, adaptive_factors, chol, kernel, n_samples, seed):
    """Draw ``n_samples`` points on the device: a training row by weight, plus a kernel draw."""
    cp = require_cupy("backend='cuda'")
    rs = cp.random.RandomState(seed)
    n, d = train.shape
    if sample_weight is None:
        idx = rs.randint(0, n, size=n_samples)
    else:
        p = sample_weight / sample_weight.sum()
        idx = rs.choice(n, size=n_samples, p=p)
    if kernel == "gaussian":
        u = rs.standard_normal((n_samples, d))
    else:
        direction = rs.standard_normal((n_samples, d))
        norms = cp.linalg.norm(direction, axis=1, keepdims=True)
        norms[norms == 0.0] = 1.0
        radius = _kernels._sample_radius(kernel, d, n_samples, rs, xp=cp, uniform=rs.random_sample)
        u = direction / norms * radius[:, None]
    if adaptive_factors is not None:
        u *= adaptive_factors[idx, None]
    out = train[idx].astype(cp.float64) + u @ cp.asarray(chol).T
    return out.astype(train.dtype, copy=False)


def cv_bandwidth_matrix(X, weights, kernel):
    """``bandwidth="cv"`` for X (n, d) on the device: c² H0 with H0 Scott's matrix and c the factor of
    ``_bandwidth.DEFAULT_CV_FACTORS`` with the largest leave-one-out likelihood. The O(n²·g) leave-one-out sums run on
    the device (``_kde_cuda.kde_loo_logsum_grid``); only their (n, g) result comes to the host, where
    the same code as on the CPU picks the factor."""
    from ._kde_cuda import kde_loo_logsum_grid

    cp = require_cupy("backend='cuda'")
    n, d = X.shape
    H0 = rule_bandwidth_matrix(X, weights, "scott", kernel)
    X_white = whiten(_bandwidth.cholesky_bandwidth(H0), X)
    w, log_w, factors = _bandwidth.cv_grid_inputs(None if weights is None else weights.get(), n)
    L = kde_loo_logsum_grid(X_white, cp.asarray(log_w), kernel, 1.0 / factors).get()
    factor, _ = _bandwidth.cv_factor_from_loo(L, w, d, kernel, factors)
    return factor**2 * H0


def engine_state(est, dtype, device_id):
    """``KernelDensity._engine_state`` as CuPy arrays on GPU ``device_id``: (chol, whitened train_t
    (d, n) in ``dtype``, log weights, inverse scales or None, log normaliser)."""
    from ._kernels import log_kernel_norm

    cp = require_cupy("backend='cuda'")
    with cp.cuda.Device(device_id):
        # The fitted arrays come to this device once (the caller caches the result): host arrays
        # are uploaded, arrays of another GPU copied (ndarray.copy() allocates on the current one).
        def here(a):
            if a is None:
                return None
            if is_device_array(a):
                return a if a.device.id == device_id else a.copy()
            return cp.asarray(a)

        X = here(est.training_data_)
        n, d = X.shape
        chol = est._bandwidth_cholesky()
        train_t = cp.ascontiguousarray(whiten(chol, X.astype(cp.float64) - cp.asarray(est._centre())).T, dtype=dtype)
        weights = cp.ones(n) if est.sample_weight_ is None else here(est.sample_weight_).astype(cp.float64)
        log_w = cp.log(weights) - cp.log(weights.sum())
        inv_scales = None
        if est.adaptive_factors_ is not None:
            lam = here(est.adaptive_factors_).astype(cp.float64)
            log_w = log_w - d * cp.log(lam)
            inv_scales = 1.0 / lam
        keep = cp.isfinite(log_w)  # zero-weight rows contribute nothing: drop them
        if not bool(keep.all()):
            train_t = cp.ascontiguousarray(train_t[:, keep])
            log_w = log_w[keep]
            inv_scales = None if inv_scales is None else inv_scales[keep]
        log_norm = log_kernel_norm(est.kernel, d) - float(np.sum(np.log(np.diag(chol))))
        return chol, train_t, log_w, inv_scales, log_norm
