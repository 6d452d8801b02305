"""Cholesky factors in double-double arithmetic for the Gaussian mixture.

``precision_cholesky_full`` computes the precision factors U = L⁻ᵀ (Σ = L Lᵀ) in double-double
arithmetic (≈ 32 significant digits) and rounds them once: for ill-conditioned covariances the
factors, the log-determinant and therefore the log-densities stay accurate where a float64
Cholesky loses ~log10(cond(Σ)) digits (scikit-learn issue #29989).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ------------------------------------------------------------- precision Cholesky factors
# Double-double arithmetic (Dekker 1971; Knuth's two-sum): a value is hi + lo with |lo| ≤ ulp(hi)/2.
# These functions must not be compiled with fastmath: reassociation would cancel the error terms.
_SPLIT = 134217729.0  # 2^27 + 1


@njit(inline="always")
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(inline="always")
def _split(a):
    t = _SPLIT * a
    hi = t - (t - a)
    return hi, a - hi


@njit(inline="always")
def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(inline="always")
def _dd_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    e += al + bl
    return _two_sum(s, e)


@njit(inline="always")
def _dd_mul(ah, al, bh, bl):
    p, e = _two_prod(ah, bh)
    e += ah * bl + al * bh
    return _two_sum(p, e)


@njit(inline="always")
def _dd_div(ah, al, bh, bl):
    q1 = ah / bh
    ph, pl = _dd_mul(q1, 0.0, bh, bl)
    rh, rl = _dd_add(ah, al, -ph, -pl)
    q2 = rh / bh
    ph, pl = _dd_mul(q2, 0.0, bh, bl)
    rh, rl = _dd_add(rh, rl, -ph, -pl)
    q3 = rh / bh
    h, lo = _two_sum(q1, q2)
    return _dd_add(h, lo, q3, 0.0)


@njit(inline="always")
def _dd_sqrt(ah, al):
    x = math.sqrt(ah)
    sh, sl = _two_prod(x, x)
    rh, rl = _dd_add(ah, al, -sh, -sl)
    return _two_sum(x, rh / (2.0 * x))


@njit(cache=True)
def _chol_dd_parts(A, Lh, Ll):
    """A = L Lᵀ in double-double into (Lh, Ll); False if A is not numerically positive
    definite (a non-positive or non-finite pivot)."""
    d = A.shape[0]
    for j in range(d):
        sh, sl = A[j, j], 0.0
        for k in range(j):
            ph, pl = _dd_mul(Lh[j, k], Ll[j, k], Lh[j, k], Ll[j, k])
            sh, sl = _dd_add(sh, sl, -ph, -pl)
        if not (sh > 0.0) or not math.isfinite(sh):
            return False
        dh, dl = _dd_sqrt(sh, sl)
        Lh[j, j] = dh
        Ll[j, j] = dl
        for i in range(j + 1, d):
            sh, sl = A[i, j], 0.0
            for k in range(j):
                ph, pl = _dd_mul(Lh[i, k], Ll[i, k], Lh[j, k], Ll[j, k])
                sh, sl = _dd_add(sh, sl, -ph, -pl)
            qh, ql = _dd_div(sh, sl, dh, dl)
            Lh[i, j] = qh
            Ll[i, j] = ql
    return True


@njit(cache=True)
def _factor_batch(A, invert, out, ok):
    """For each matrix A_c = L Lᵀ: out_c = L (invert=False) or U = L⁻ᵀ (invert=True), computed
    in double-double and rounded once; ok_c False where A_c is not positive definite."""
    d = A.shape[1]
    Lh = np.zeros((d, d))
    Ll = np.zeros((d, d))
    Mh = np.zeros((d, d))
    Ml = np.zeros((d, d))
    for c in range(A.shape[0]):
        Lh[:] = 0.0
        Ll[:] = 0.0
        ok[c] = _chol_dd_parts(A[c], Lh, Ll)
        if not ok[c]:
            continue
        if not invert:
            for i in range(d):
                for j in range(d):
                    out[c, i, j] = Lh[i, j] + Ll[i, j]
            continue
        # M = L⁻¹ (lower triangular), column by column; U = Mᵀ
        Mh[:] = 0.0
        Ml[:] = 0.0
        for j in range(d):
            ih, il = _dd_div(1.0, 0.0, Lh[j, j], Ll[j, j])
            Mh[j, j] = ih
            Ml[j, j] = il
            for i in range(j + 1, d):
                sh, sl = 0.0, 0.0
                for k in range(j, i):
                    ph, pl = _dd_mul(Lh[i, k], Ll[i, k], Mh[k, j], Ml[k, j])
                    sh, sl = _dd_add(sh, sl, ph, pl)
                qh, ql = _dd_div(-sh, -sl, Lh[i, i], Ll[i, i])
                Mh[i, j] = qh
                Ml[i, j] = ql
        for i in range(d):
            for j in range(d):
                out[c, i, j] = Mh[j, i] + Ml[j, i]


def precision_cholesky_full(covariances):
    """Upper-triangular U_c = L_c⁻ᵀ for covariances (k, d, d) = L_c L_cᵀ, computed in
    double-double arithmetic and rounded once.

    Returns (U (k, d, d), ok (k,) bool); ok[c] is False where Σ_c is not numerically positive
    definite (U_c is then zero).
    """
    A = np.ascontiguousarray(covariances, dtype=np.float64)
    out = np.zeros_like(A)
    ok = np.zeros(A.shape[0], dtype=np.bool_)
    _factor_batch(A, True, out, ok)
    return out, ok


def cholesky_dd(matrices):
    """Lower Cholesky factors of (k, d, d) matrices in double-double, rounded once: (L, ok)."""
    A = np.ascontiguousarray(matrices, dtype=np.float64)
    out = np.zeros_like(A)
    ok = np.zeros(A.shape[0], dtype=np.bool_)
    _factor_batch(A, False, out, ok)
    return out, ok
