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
the same chunks on the calling thread. The products with the precision factors and the
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

import math

import numpy as np
from numba import njit, prange

from .._backend._fastexp import FASTMATH, fast_exp_neg

BLOCK = 64  # rows per block: the length of every vectorised inner loop
CHUNK = 2048  # rows per chunk: the unit of parallel work and of the fixed-order reduction
# Fewer chunks than this run on the calling thread, one after the other (the same arithmetic):
# starting a parallel region costs more than it saves on small inputs, much more on a busy
# machine where OpenMP's spinning workers compete with the calling thread.
PARALLEL_MIN_CHUNKS = 4
LOG_2PI = math.log(2.0 * math.pi)

_FULL, _TIED, _DIAG = 0, 1, 2  # engine families (spherical runs as diag)

MODE_LOG_PROB = 0  # write the (n, k) weighted log-densities
MODE_NORM = 1  # write the (n,) log-sum-exp normaliser only
MODE_ESTEP = 2  # normaliser and sufficient statistics
MODE_LABELS = 3  # sufficient statistics of given hard labels (initialisation; -1: no component)
MODE_RESP = 4  # sufficient statistics of given (n, k) responsibilities (initialisation)


# ------------------------------------------------------------------------------ blocks
# The feature dimension is padded to a multiple of 4 (zero rows in the data block, zero means,
# zero precision-factor entries), so that the small matrix products below run on 4 × 4 tiles
# with no remainder code: 16 multiply-adds per 8 loads, vectorised over the rows of the block.


@njit(fastmath=FASTMATH, cache=True)
def _load_block(X, w, r0, nb, xt, wb):
    """Rows r0 .. r0+nb of X, transposed into xt (dp, BLOCK); padding columns (and, set once
    by the caller, padding rows) are zero. Their weights into wb (0 for padding)."""
    d = X.shape[1]
    for b in range(nb):
        row = r0 + b
        for i in range(d):
            xt[i, b] = X[row, i]
        wb[b] = w[row]
    for b in range(np.uint64(nb), np.uint64(BLOCK)):
        for i in range(d):
            xt[i, b] = 0.0
        wb[b] = 0.0


@njit(fastmath=FASTMATH, cache=True)
def _centre(xt, mu, dt):
    """dt = xt − mu[:, None] for one component."""
    for i in range(xt.shape[0]):
        m = mu[i]
        for b in range(BLOCK):
            dt[i, b] = xt[i, b] - m


@njit(fastmath=FASTMATH, cache=True)
def _tri_product(dt, U, y):
    """y[j, :] = Σ_{i ≤ j} U[i, j] dt[i, :] for an upper-triangular U (dp × dp), in 4 × 4 tiles."""
    dp = dt.shape[0]
    for jb in range(0, dp, 4):
        for b in range(BLOCK):
            y[jb, b] = 0.0
            y[jb + 1, b] = 0.0
            y[jb + 2, b] = 0.0
            y[jb + 3, b] = 0.0
        for ib in range(0, jb + 4, 4):
            u00 = U[ib, jb]
            u01 = U[ib, jb + 1]
            u02 = U[ib, jb + 2]
            u03 = U[ib, jb + 3]
            u10 = U[ib + 1, jb]
            u11 = U[ib + 1, jb + 1]
            u12 = U[ib + 1, jb + 2]
            u13 = U[ib + 1, jb + 3]
            u20 = U[ib + 2, jb]
            u21 = U[ib + 2, jb + 1]
            u22 = U[ib + 2, jb + 2]
            u23 = U[ib + 2, jb + 3]
            u30 = U[ib + 3, jb]
            u31 = U[ib + 3, jb + 1]
            u32 = U[ib + 3, jb + 2]
            u33 = U[ib + 3, jb + 3]
            for b in range(BLOCK):
                d0 = dt[ib, b]
                d1 = dt[ib + 1, b]
                d2 = dt[ib + 2, b]
                d3 = dt[ib + 3, b]
                y[jb, b] += d0 * u00 + d1 * u10 + d2 * u20 + d3 * u30
                y[jb + 1, b] += d0 * u01 + d1 * u11 + d2 * u21 + d3 * u31
                y[jb + 2, b] += d0 * u02 + d1 * u12 + d2 * u22 + d3 * u32
                y[jb + 3, b] += d0 * u03 + d1 * u13 + d2 * u23 + d3 * u33


@njit(fastmath=FASTMATH, cache=True)
def _gram_lower(a, v, S):
    """S[i, j] += Σ_b a[i, b] v[j, b] on the 4 × 4 tiles on and below the diagonal
    (entries above the diagonal inside diagonal tiles are computed too and ignored)."""
    dp = a.shape[0]
    for ib in range(0, dp, 4):
        for jb in range(0, ib + 4, 4):
            s00 = s01 = s02 = s03 = 0.0
            s10 = s11 = s12 = s13 = 0.0
            s20 = s21 = s22 = s23 = 0.0
            s30 = s31 = s32 = s33 = 0.0
            for b in range(BLOCK):
                a0 = a[ib, b]
                a1 = a[ib + 1, b]
                a2 = a[ib + 2, b]
                a3 = a[ib + 3, b]
                v0 = v[jb, b]
                v1 = v[jb + 1, b]
                v2 = v[jb + 2, b]
                v3 = v[jb + 3, b]
                s00 += a0 * v0
                s01 += a0 * v1
                s02 += a0 * v2
                s03 += a0 * v3
                s10 += a1 * v0
                s11 += a1 * v1
                s12 += a1 * v2
                s13 += a1 * v3
                s20 += a2 * v0
                s21 += a2 * v1
                s22 += a2 * v2
                s23 += a2 * v3
                s30 += a3 * v0
                s31 += a3 * v1
                s32 += a3 * v2
                s33 += a3 * v3
            S[ib, jb] += s00
            S[ib, jb + 1] += s01
            S[ib, jb + 2] += s02
            S[ib, jb + 3] += s03
            S[ib + 1, jb] += s10
            S[ib + 1, jb + 1] += s11
            S[ib + 1, jb + 2] += s12
            S[ib + 1, jb + 3] += s13
            S[ib + 2, jb] += s20
            S[ib + 2, jb + 1] += s21
            S[ib + 2, jb + 2] += s22
            S[ib + 2, jb + 3] += s23
            S[ib + 3, jb] += s30
            S[ib + 3, jb + 1] += s31
            S[ib + 3, jb + 2] += s32
            S[ib + 3, jb + 3] += s33


@njit(fastmath=FASTMATH, cache=True)
def _sum_squares(y, cc, lp_row):
    """lp_row[b] = cc − ½ Σ_j y[j, b]²."""
    for b in range(BLOCK):
        lp_row[b] = 0.0
    for j in range(y.shape[0]):
        for b in range(BLOCK):
            lp_row[b] += y[j, b] * y[j, b]
    for b in range(BLOCK):
        lp_row[b] = cc - 0.5 * lp_row[b]


@njit(fastmath=FASTMATH, cache=True)
def _log_prob_full(xt, means, U, cst, dt, y, lp):
    """lp[c, b] = cst[c] − ½‖(x_b − μ_c) U_c‖² for every component (U_c upper triangular)."""
    for c in range(means.shape[0]):
        _centre(xt, means[c], dt)
        _tri_product(dt, U[c], y)
        _sum_squares(y, cst[c], lp[c])


@njit(fastmath=FASTMATH, cache=True)
def _log_prob_tied(xt, shift, muU, U, cst, dt, z, lp):
    """lp[c, b] = cst[c] − ½‖(x_b − s) U − (μ_c − s) U‖² with one shared U (s = ``shift``):
    (x − s) U once per block; ``muU`` holds (μ_c − s) U."""
    _centre(xt, shift, dt)
    _tri_product(dt, U, z)
    for c in range(muU.shape[0]):
        _centre(z, muU[c], dt)
        _sum_squares(dt, cst[c], lp[c])


@njit(fastmath=FASTMATH, cache=True)
def _log_prob_diag(xt, means, P, cst, lp):
    """lp[c, b] = cst[c] − ½ Σ_i ((x_bi − μ_ci) p_ci)² (P: the diagonal precision factors)."""
    d = xt.shape[0]
    for c in range(means.shape[0]):
        row = lp[c]
        for b in range(BLOCK):
            row[b] = 0.0
        for i in range(d):
            m = means[c, i]
            p = P[c, i]
            for b in range(BLOCK):
                t = (xt[i, b] - m) * p
                row[b] += t * t
        cc = cst[c]
        for b in range(BLOCK):
            row[b] = cc - 0.5 * row[b]


@njit(fastmath=FASTMATH, cache=True)
def _normalise(lp, wb, mx, s):
    """Log-sum-exp over components into mx (the normaliser); lp becomes w_b r_cb in place.

    A row whose log-densities all underflow to −inf (a query so far from every component that
    its squared Mahalanobis distances overflow; NaN from inf − inf counts as −inf) gets the
    normaliser −inf and zero responsibilities, never a division by zero."""
    K = lp.shape[0]
    for b in range(BLOCK):
        mx[b] = -np.inf
    for c in range(K):
        for b in range(BLOCK):
            v = lp[c, b]
            mx[b] = v if v > mx[b] else mx[b]
    for b in range(BLOCK):
        s[b] = 0.0
    for c in range(K):
        for b in range(BLOCK):
            e = fast_exp_neg(lp[c, b] - mx[b])  # 0 for NaN arguments (a failed comparison)
            lp[c, b] = e
            s[b] += e
    for b in range(BLOCK):
        sb = s[b]
        mx[b] = mx[b] + math.log(sb) if sb > 0.0 else -np.inf
        s[b] = wb[b] / max(sb, 1e-300)  # sb >= 1 unless every term underflowed (then all e are 0)
    for c in range(K):
        for b in range(BLOCK):
            lp[c, b] *= s[b]


@njit(fastmath=FASTMATH, cache=True)
def _given_labels(labels, b0, nb, wb, R):
    """R[c, b] = w_b for the component labels[b0 + b] (none for −1), 0 elsewhere."""
    K = R.shape[0]
    for c in range(K):
        for b in range(BLOCK):
            R[c, b] = 0.0
    for b in range(nb):
        c = labels[b0 + b]
        if c >= 0:
            R[c, b] = wb[b]


@njit(fastmath=FASTMATH, cache=True)
def _given_resp(resp, b0, nb, wb, R):
    """R[c, b] = w_b resp[b0 + b, c] (0 on padding rows)."""
    K = R.shape[0]
    for c in range(K):
        for b in range(BLOCK):
            R[c, b] = 0.0
    for b in range(nb):
        for c in range(K):
            R[c, b] = wb[b] * resp[b0 + b, c]


@njit(fastmath=FASTMATH, cache=True)
def _first_moments(xt, means, R, dt, rd, c, nk, sx):
    """For component c: dt = x − μ_c, rd = r dt; add Σ r and Σ r dt."""
    _centre(xt, means[c], dt)
    acc = 0.0
    for b in range(BLOCK):
        acc += R[c, b]
    nk[c] += acc
    for i in range(xt.shape[0]):
        acc = 0.0
        for b in range(BLOCK):
            v = R[c, b] * dt[i, b]
            rd[i, b] = v
            acc += v
        sx[c, i] += acc


@njit(fastmath=FASTMATH, cache=True)
def _stats_full(xt, means, R, dt, rd, nk, sx, sxx):
    """Add one block's R_c, Σ r (x − μ_c) and Σ r (x − μ_c)(x − μ_c)ᵀ (lower tiles)."""
    for c in range(means.shape[0]):
        _first_moments(xt, means, R, dt, rd, c, nk, sx)
        _gram_lower(rd, dt, sxx[c])


@njit(fastmath=FASTMATH, cache=True)
def _stats_tied(xt, shift, wb, means, R, dt, rd, nk, sx, sxx):
    """R_c and Σ r (x − μ_c) per component; Σ w (x − s)(x − s)ᵀ (lower tiles) once."""
    for c in range(means.shape[0]):
        _first_moments(xt, means, R, dt, rd, c, nk, sx)
    _centre(xt, shift, dt)
    for i in range(xt.shape[0]):
        for b in range(BLOCK):
            rd[i, b] = wb[b] * dt[i, b]
    _gram_lower(rd, dt, sxx)


@njit(fastmath=FASTMATH, cache=True)
def _stats_diag(xt, means, R, nk, sx, sxx):
    """R_c, Σ r (x − μ_c) and Σ r (x − μ_c)² per component."""
    d = xt.shape[0]
    for c in range(means.shape[0]):
        acc = 0.0
        for b in range(BLOCK):
            acc += R[c, b]
        nk[c] += acc
        for i in range(d):
            m = means[c, i]
            a1 = 0.0
            a2 = 0.0
            for b in range(BLOCK):
                t = xt[i, b] - m
                v = R[c, b] * t
                a1 += v
                a2 += v * t
            sx[c, i] += a1
            sxx[c, i] += a2


@njit(fastmath=FASTMATH, cache=True)
def _chunk(X, w, means, U, shift, muU, cst, family, mode, r0, r1, lpn, lp_out, nk, sx, sxx, labels, resp):
    """One chunk of rows r0..r1, block by block, by one thread. ``labels`` (n,) / ``resp`` (n, k):
    the given responsibilities of MODE_LABELS / MODE_RESP (placeholders otherwise)."""
    dp = means.shape[1]
    K = means.shape[0]
    xt = np.zeros((dp, BLOCK))
    dt = np.zeros((dp, BLOCK))
    rd = np.zeros((dp, BLOCK))
    wb = np.empty(BLOCK)
    mx = np.empty(BLOCK)
    s = np.empty(BLOCK)
    lp = np.empty((K, BLOCK))
    for b0 in range(r0, r1, BLOCK):
        nb = min(BLOCK, r1 - b0)
        _load_block(X, w, b0, nb, xt, wb)
        if mode == MODE_LABELS:
            _given_labels(labels, b0, nb, wb, lp)
        elif mode == MODE_RESP:
            _given_resp(resp, b0, nb, wb, lp)
        else:
            if family == _FULL:
                _log_prob_full(xt, means, U, cst, dt, rd, lp)
            elif family == _TIED:
                _log_prob_tied(xt, shift, muU, U[0], cst, dt, rd, lp)
            else:
                _log_prob_diag(xt, means, U[0], cst, lp)
            if mode == MODE_LOG_PROB:
                for b in range(nb):
                    for c in range(K):
                        lp_out[b0 + b, c] = lp[c, b]
                continue
            _normalise(lp, wb, mx, s)
            for b in range(nb):
                lpn[b0 + b] = mx[b]
            if mode == MODE_NORM:
                continue
        if family == _FULL:
            _stats_full(xt, means, lp, dt, rd, nk, sx, sxx)
        elif family == _TIED:
            _stats_tied(xt, shift, wb, means, lp, dt, rd, nk, sx, sxx[0])
        else:
            _stats_diag(xt, means, lp, nk, sx, sxx[0])


@njit(parallel=True, cache=True)
def _gmm_pass_parallel(X, w, means, U, shift, muU, cst, family, mode, lpn, lp_out, nk_p, sx_p, sxx_p, labels, resp):
    n = X.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    last = nk_p.shape[0] - 1  # one partial buffer per chunk (E-step) or a placeholder
    for ch in prange(n_chunks):
        r0 = np.int64(ch) * CHUNK
        r1 = min(n, r0 + CHUNK)
        p = min(np.int64(ch), last)
        _chunk(X, w, means, U, shift, muU, cst, family, mode, r0, r1, lpn, lp_out,
               nk_p[p], sx_p[p], sxx_p[p], labels, resp)


@njit(cache=True)
def _gmm_pass_serial(X, w, means, U, shift, muU, cst, family, mode, lpn, lp_out, nk_p, sx_p, sxx_p, labels, resp):
    n = X.shape[0]
    last = nk_p.shape[0] - 1
    for ch in range((n + CHUNK - 1) // CHUNK):
        r0 = ch * CHUNK
        p = min(ch, last)
        _chunk(X, w, means, U, shift, muU, cst, family, mode, r0, min(n, r0 + CHUNK), lpn, lp_out,
               nk_p[p], sx_p[p], sxx_p[p], labels, resp)


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
