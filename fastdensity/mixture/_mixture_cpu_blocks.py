"""The per-block Numba kernels of the Gaussian mixture (``_mixture_cpu`` drives them over chunks):
loading a block of ``BLOCK`` rows transposed, the log-densities of each covariance family from
the precision factors (4 × 4 register tiles over the rows), the log-sum-exp normaliser and
responsibilities, the sufficient statistics about the current means, and ``_chunk``, which runs
one chunk of rows block by block on one thread. See ``_mixture_cpu`` for the determinism and
padding rules these follow.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

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
