"""Numba kernels of the Gaussian mixture: the fused E-step and the log-densities.

``gmm_estep`` is one parallel pass over the data per EM iteration. For each fixed block of
``BLOCK`` rows it computes every component's log-density from the Cholesky factor of its
precision, the log-sum-exp normaliser, the responsibilities and the sufficient statistics of
the M-step, without any (n, k) or (n, k, d) temporary:

    R_k   = Σ_i w_i r_ik                                         (k,)
    Sx_k  = Σ_i w_i r_ik (x_i − μ_k)                             (k, d)
    Sxx_k = Σ_i w_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ                  full: (k, d, d)
            Σ_i w_i r_ik (x_i − μ_k)²                            diag, spherical: (k, d)
            Σ_i w_i (x_i − c)(x_i − c)ᵀ                          tied: (d, d), c = ``shift``

The statistics are taken about the current means (the previous iteration's), not about the
origin: the M-step's covariance Sxx/R − δδᵀ (δ = the mean's update, small) then has no
catastrophic cancellation when |μ| ≫ σ (scikit-learn's diag, spherical and tied formulas,
E[x²] − μ², lose ~log10(μ²/σ²) digits there).

Determinism (DESIGN.md, "Numerics"): rows are cut into chunks of ``CHUNK`` rows (a constant),
each chunk is processed by one thread in a fixed order of blocks into its own partial buffers,
and the partial buffers are summed in chunk order afterwards, so the results do not depend on
the number of threads. Every block is padded to ``BLOCK`` rows (padding has weight 0), so that
every row goes through the same vector code whatever its position (predict on a subset of
the rows gives the same numbers).

The parallel driver is thin (a ``prange`` over chunks); the per-block work lives in serial
``@njit(cache=True)`` functions, and inputs of fewer than ``PARALLEL_MIN_CHUNKS`` chunks run
the same chunks on the calling thread (the serial twin, compiled from the same body). The products with the precision factors and the
second moments are 4 × 4 register tiles vectorised over the rows of a block (the feature
dimension is zero-padded to a multiple of 4); only the lower triangle of Sxx is accumulated.
The exp is ``fast_exp_neg`` (vectorisable, arguments ≤ 0). All arithmetic is float64.

Everything compiles to one specialisation per driver: the covariance family and the mode
(log-densities, normaliser, E-step) are runtime arguments, so float64 data of any shape and
every covariance type share the compiled code.

Two more modes give the statistics of given responsibilities, for the initialisation (``gmm_stats``):
hard labels (k-means, seed rows) or a dense (n, k) array ("random"), the same blocks and reductions
without the log-densities. A row whose log-densities all underflow (a query at |x| ~ 1e300) gets the
normaliser −inf and no responsibilities (``_normalise``), never a division by zero.

The precision factors come from ``_cholesky_dd`` (double-double Cholesky); k-means++ seeding on
the same blocks is in ``_kmeans_plusplus_cpu``, Lloyd's k-means in ``_kmeans_cpu``.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .._backend._numba_drivers import serial_and_parallel
from ._mixture_cpu_blocks import (
    CHUNK, LOG_2PI, MODE_ESTEP, MODE_LABELS, MODE_LOG_PROB, MODE_NORM, MODE_RESP, PARALLEL_MIN_CHUNKS, _DIAG,
    _FULL, _TIED, _chunk,
)


def _gmm_pass_chunks(X, w, means, U, shift, muU, cst, family, mode, lpn, lp_out, nk_p, sx_p, sxx_p, labels, resp):
    n = X.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    last = nk_p.shape[0] - 1  # one partial buffer per chunk (E-step) or a placeholder
    for ch in prange(n_chunks):
        r0 = np.int64(ch) * CHUNK
        r1 = min(n, r0 + CHUNK)
        p = min(np.int64(ch), last)
        _chunk(X, w, means, U, shift, muU, cst, family, mode, r0, r1, lpn, lp_out,
               nk_p[p], sx_p[p], sxx_p[p], labels, resp)


_gmm_pass_serial, _gmm_pass_parallel = serial_and_parallel(_gmm_pass_chunks)


# ------------------------------------------------------------------------------- drivers
def _gmm_pass(*args):
    """One pass over the chunks: in parallel, or on the calling thread for small inputs (the
    chunks and each chunk's arithmetic are the same, so are the results)."""
    if args[0].shape[0] >= PARALLEL_MIN_CHUNKS * CHUNK:
        _gmm_pass_parallel(*args)
    else:
        _gmm_pass_serial(*args)


def _log_det_cholesky(prec_chol, cov_type, d):
    """log |U_c| per component: Σ log diag(U_c) (= −½ log |Σ_c|)."""
    if cov_type == "full":
        return np.sum(np.log(np.diagonal(prec_chol, axis1=1, axis2=2)), axis=1)
    if cov_type == "tied":
        return np.sum(np.log(np.diag(prec_chol)))
    if cov_type == "diag":
        return np.sum(np.log(prec_chol), axis=1)
    return d * np.log(prec_chol)


def _padded(d):
    return (d + 3) // 4 * 4


def _pad(a, shape):
    """``a`` zero-padded at the end of every axis to ``shape`` (contiguous float64)."""
    out = np.zeros(shape)
    out[tuple(slice(0, s) for s in a.shape)] = a
    return out


def _prepare(means, prec_chol, log_weights, cov_type, shift):
    """Engine arrays, padded to dp features: (family, means, U, muU, shift, cst).

    ``cst[c]`` = log π_c + log|U_c| − (d/2) log 2π (without log π_c when log_weights is None).
    A model near the ends of the float64 range may overflow (μ − shift, (μ − shift) U): the
    infinities are what the kernels expect (−inf log-densities), so no warning.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _prepare_arrays(means, prec_chol, log_weights, cov_type, shift)


def _prepare_arrays(means, prec_chol, log_weights, cov_type, shift):
    means = np.asarray(means, dtype=np.float64)
    K, d = means.shape
    dp = _padded(d)
    prec_chol = np.asarray(prec_chol, dtype=np.float64)
    cst = _log_det_cholesky(prec_chol, cov_type, d) - 0.5 * d * LOG_2PI + np.zeros(K)
    if log_weights is not None:
        cst = cst + np.asarray(log_weights, dtype=np.float64)
    cst = np.ascontiguousarray(cst)
    if shift is None:
        shift = np.mean(means, axis=0)
    shift = np.asarray(shift, dtype=np.float64)
    muU = np.zeros((1, dp))
    if cov_type == "full":
        family, U = _FULL, _pad(prec_chol, (K, dp, dp))
    elif cov_type == "tied":
        family, U = _TIED, _pad(prec_chol[None], (1, dp, dp))
        muU = _pad((means - shift) @ prec_chol, (K, dp))
    elif cov_type == "diag":
        family, U = _DIAG, _pad(prec_chol[None], (1, K, dp))
    elif cov_type == "spherical":
        family, U = _DIAG, _pad(np.repeat(prec_chol[:, None], d, axis=1)[None], (1, K, dp))
    else:
        raise ValueError(f"unknown covariance type {cov_type!r}")
    return family, _pad(means, (K, dp)), U, muU, _pad(shift, (dp,)), cst


def _no_stats():
    """Placeholder partial-statistics buffers (same types as the real ones: one compilation)."""
    return np.zeros((1, 1)), np.zeros((1, 1, 1)), np.zeros((1, 1, 1, 1))


_NO_LABELS = np.zeros(1, dtype=np.int64)
_NO_RESP = np.zeros((1, 1))


def _as_rows(X):
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D; got shape {X.shape}")
    return X


def gmm_log_prob(X, means, prec_chol, cov_type, log_weights=None, shift=None):
    """log N(x_i | μ_c, (U_c U_cᵀ)⁻¹) (+ log_weights[c] when given): float64 (n, k).

    ``prec_chol`` in scikit-learn's layout for ``cov_type`` (full: (k, d, d) upper triangular,
    tied: (d, d), diag: (k, d), spherical: (k,)). For tied covariances the data are shifted by
    ``shift`` (default: the mean of the means, a property of the model, so that each row's
    result does not depend on the other rows) before the shared factor is applied. Entries whose
    squared Mahalanobis distance overflows are −inf (or NaN where x − μ itself overflows).
    """
    X = _as_rows(X)
    n = X.shape[0]
    family, means, U, muU, shift, cst = _prepare(means, prec_chol, log_weights, cov_type, shift)
    out = np.empty((n, means.shape[0]))
    if n:
        _gmm_pass(X, np.ones(n), means, U, shift, muU, cst, family, MODE_LOG_PROB, np.empty(0),
                  out, *_no_stats(), _NO_LABELS, _NO_RESP)
    return out


def gmm_log_prob_norm(X, means, prec_chol, log_weights, cov_type, shift=None):
    """log Σ_c π_c N(x_i | μ_c, Σ_c) for each row: float64 (n,), without an (n, k) array; −inf
    for a row so far from every component that all its log-densities underflow."""
    X = _as_rows(X)
    n = X.shape[0]
    family, means, U, muU, shift, cst = _prepare(means, prec_chol, log_weights, cov_type, shift)
    lpn = np.empty(n)
    if n:
        _gmm_pass(X, np.ones(n), means, U, shift, muU, cst, family, MODE_NORM, lpn,
                  np.zeros((1, 1)), *_no_stats(), _NO_LABELS, _NO_RESP)
    return lpn


def _stats_buffers(n, family, K, dp):
    n_chunks = max(1, (n + CHUNK - 1) // CHUNK)
    nk_p = np.zeros((n_chunks, K))
    sx_p = np.zeros((n_chunks, K, dp))
    if family == _FULL:
        sxx_p = np.zeros((n_chunks, K, dp, dp))
    elif family == _TIED:
        sxx_p = np.zeros((n_chunks, 1, dp, dp))
    else:
        sxx_p = np.zeros((n_chunks, 1, K, dp))
    return nk_p, sx_p, sxx_p


def _reduce_stats(family, d, nk_p, sx_p, sxx_p):
    """Fixed-order reduction of the per-chunk partial sums, then the padding is dropped."""
    nk = nk_p.sum(axis=0)
    sx = sx_p.sum(axis=0)[:, :d]
    sxx = sxx_p.sum(axis=0)
    if family == _FULL:
        sxx = np.tril(sxx[:, :d, :d])
        sxx = sxx + np.tril(sxx, -1).transpose(0, 2, 1)
    elif family == _TIED:
        sxx = np.tril(sxx[0, :d, :d])
        sxx = sxx + np.tril(sxx, -1).T
    else:
        sxx = sxx[0][:, :d]
    return nk, sx, sxx


def _weights(sample_weight, n):
    return np.ones(n) if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float64)


def gmm_estep(X, sample_weight, means, prec_chol, log_weights, cov_type, shift=None):
    """The fused E-step: (log_prob_norm (n,), R (k,), Sx (k, d), Sxx).

    ``sample_weight`` (n,) or None. R, Sx and Sxx are the weighted sufficient statistics about
    the current ``means`` (see the module docstring); Sxx is (k, d, d) for full (symmetric),
    (d, d) about ``shift`` (default: the mean of the means) for tied and (k, d) for diag and
    spherical. Deterministic: independent of the number of threads.
    """
    X = _as_rows(X)
    n, d = X.shape
    family, means, U, muU, shift, cst = _prepare(means, prec_chol, log_weights, cov_type, shift)
    K, dp = means.shape
    parts = _stats_buffers(n, family, K, dp)
    lpn = np.empty(n)
    if n:
        _gmm_pass(X, _weights(sample_weight, n), means, U, shift, muU, cst, family, MODE_ESTEP, lpn,
                  np.zeros((1, 1)), *parts, _NO_LABELS, _NO_RESP)
    return (lpn,) + _reduce_stats(family, d, *parts)


def gmm_stats(X, sample_weight, centres, cov_type, shift, labels=None, resp=None):
    """Sufficient statistics (R (k,), Sx (k, d), Sxx) of given responsibilities, about ``centres``
    (k, d), in the layout of :func:`gmm_estep` (tied: Sxx about ``shift`` over all rows): one
    pass of the E-step engine without the log-densities. The responsibilities are either hard
    ``labels`` (n,) int64 (component index, −1 for none) or dense ``resp`` (n, k)."""
    X = _as_rows(X)
    n, d = X.shape
    centres = np.asarray(centres, dtype=np.float64)
    K = centres.shape[0]
    if (labels is None) == (resp is None):
        raise ValueError("give exactly one of labels and resp")
    dummy = {"full": np.broadcast_to(np.eye(d), (K, d, d)), "tied": np.eye(d), "diag": np.ones((K, d)),
             "spherical": np.ones(K)}[cov_type]
    family, means, U, muU, shift, cst = _prepare(centres, dummy, None, cov_type, shift)
    dp = means.shape[1]
    parts = _stats_buffers(n, family, K, dp)
    if labels is not None:
        mode, labels, resp = MODE_LABELS, np.ascontiguousarray(labels, dtype=np.int64), _NO_RESP
    else:
        mode, labels, resp = MODE_RESP, _NO_LABELS, np.ascontiguousarray(resp, dtype=np.float64)
    if n:
        _gmm_pass(X, _weights(sample_weight, n), means, U, shift, muU, cst, family, mode, np.empty(0),
                  np.zeros((1, 1)), *parts, labels, resp)
    return _reduce_stats(family, d, *parts)
