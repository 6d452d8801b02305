"""Numba engine for likelihood cross-validation of the bandwidth on the CPU.

The op ``kde_loo_logsum_grid`` computes, for every training point x_i (rows of ``train``, already
whitened by a pilot bandwidth) and every candidate scale factor c (given as its inverse 1/c),

    L[i, c] = log Σ_{j≠i} w_j · k(‖x_i − x_j‖ / c)

with ``k`` the unit-scale kernel profile of ``_kde_cpu``. Normalising constants (c_d, c^d and
Σ_{j≠i} w_j) are the caller's job (``_bandwidth.cv_bandwidth_factor``).

Design (see DESIGN.md, "Numerics", and the comments of ``_kde_cpu.py``):

* One pass over the pairs for all candidates: for a row i and a tile of ``TILE`` training points
  the squared distances are computed once into a buffer, then each candidate sweeps the buffer
  (contiguous, vectorised, ``fast_exp_neg``). The buffer stays in L1, so the distance work is
  amortised over the g candidates and the loop runs at the kernel's exp rate.
* Leave-one-out by weight, not by subtraction: the tile's weights are copied into a buffer whose
  entry for i is 0. Subtracting the self term w_i·k(0) would cancel catastrophically when the
  factor is small and the LOO sum is far below w_i.
* ``prange`` over blocks of ``ROW_BLOCK`` rows; each row is summed by one thread in a fixed order
  (tiles in float64), so results do not depend on the thread count. Memory O(n·g + n): the output,
  the transposed training set and two tile buffers per block; no n × n matrix.
* Underflow: a plain sum at or below ``tiny`` (relative to Σw) is recomputed in log space with a
  running maximum for that (i, c) entry only; compact kernels whose plain sum is exactly 0 (and no
  weight underflowed in scaling) give exactly −inf.
* float64 only; inputs are cast.
"""

from __future__ import annotations

import math

import numpy as np
from numba import literally, njit, prange

from .._backend._fastexp import FASTMATH
from ._kde_cpu import CONSTANTS, _log_profile, _profile, lse_push
from ._kernels import EXPONENTIAL, GAUSSIAN, KERNEL_CODES

TILE = 512
ROW_BLOCK = 32
# A plain sum below this fraction of Σw (max weight scaled to 1) may have lost terms to underflow.
_TINY = 1e-280
_C64 = CONSTANTS[np.dtype(np.float64)]  # frozen into the compiled code as constants


@njit(inline="always", fastmath=FASTMATH)
def _tile_prepare(x_row, train_t, weights, i, j0, j1, r2buf, wbuf):
    """Squared distances from ``x_row`` to training points j0..j1 into ``r2buf`` (one dimension at a
    time, contiguous) and their weights into ``wbuf``, with the weight of point i set to 0."""
    # Unsigned bounds: a signed start makes Numba add wraparound checks to every load.
    nt = np.uint64(j1 - j0)
    u0 = np.uint64(j0)
    for jj in range(nt):
        r2buf[jj] = 0.0
        wbuf[jj] = weights[u0 + jj]
    for k in range(train_t.shape[0]):
        xk = x_row[k]
        for jj in range(nt):
            a = train_t[k, u0 + jj] - xk
            r2buf[jj] += a * a
    if j0 <= i < j1:
        wbuf[i - j0] = 0.0


@njit(inline="always", fastmath=FASTMATH)
def _tile_candidate_sum(code, r2buf, wbuf, nt, inv_f2):
    """Σ_jj wbuf[jj] · k(√(r2buf[jj] · inv_f2)) over a prepared tile."""
    s = 0.0
    for jj in range(np.uint64(nt)):
        s += wbuf[jj] * _profile(code, r2buf[jj] * inv_f2, _C64)
    return s


@njit(inline="always")
def _loo_logsum_slow(x_row, train_t, log_weights, code, inv_f2, skip):
    """log Σ_{j≠skip} exp(log w_j + log k) with a running maximum (underflow-proof, float64)."""
    d, n = train_t.shape
    best = -math.inf
    total = 0.0
    for j in range(n):
        if j == skip:
            continue
        r2 = 0.0
        for k in range(d):
            a = train_t[k, j] - x_row[k]
            r2 += a * a
        best, total = lse_push(best, total, log_weights[j] + _log_profile(code, r2 * inv_f2))
    if best == -math.inf:
        return -math.inf
    return best + math.log(total)


@njit(fastmath=FASTMATH, cache=True)
def _row_loo_grid(i, x_row, train_t, weights, log_weights, log_weight_shift, inv_f2, code, tiny,
                  compact_zero_is_exact, r2buf, wbuf, out_row):
    """Fill ``out_row[c]`` = log Σ_{j≠i} w_j k(r_ij · inv_factor_c) for every candidate c."""
    n = train_t.shape[1]
    g = inv_f2.shape[0]
    for c in range(g):
        out_row[c] = 0.0
    for j0 in range(0, n, TILE):
        j1 = min(n, j0 + TILE)
        _tile_prepare(x_row, train_t, weights, i, j0, j1, r2buf, wbuf)
        for c in range(g):
            out_row[c] += _tile_candidate_sum(code, r2buf, wbuf, j1 - j0, inv_f2[c])
    compact = code != GAUSSIAN and code != EXPONENTIAL
    for c in range(g):
        total = out_row[c]
        if total > tiny:
            out_row[c] = math.log(total) + log_weight_shift
        elif total == 0.0 and compact and compact_zero_is_exact:
            out_row[c] = -math.inf  # no other training point within the kernel's support
        else:
            out_row[c] = _loo_logsum_slow(x_row, train_t, log_weights, code, inv_f2[c], i)


# Thin parallel driver (parfor compilation is slow on a large body); ``literally(code)`` compiles
# one version per kernel, in which LLVM sees the kernel as a constant and vectorises its branch.
@njit(parallel=True, cache=True)
def _loo_grid_driver(train, train_t, weights, log_weights, log_weight_shift, inv_f2, code, tiny,
                     compact_zero_is_exact, out):
    literally(code)
    n = train.shape[0]
    n_blocks = (n + ROW_BLOCK - 1) // ROW_BLOCK
    for b in prange(n_blocks):
        r2buf = np.empty(TILE, dtype=np.float64)
        wbuf = np.empty(TILE, dtype=np.float64)
        for i in range(b * ROW_BLOCK, min(n, (b + 1) * ROW_BLOCK)):
            _row_loo_grid(i, train[i], train_t, weights, log_weights, log_weight_shift, inv_f2, code,
                          tiny, compact_zero_is_exact, r2buf, wbuf, out[i])


def kde_loo_logsum_grid(train, log_weights=None, kernel="gaussian", inv_factors=(1.0,)):
    """L[i, c] = log Σ_{j≠i} w_j k(‖x_i − x_j‖ · inv_factors[c]) for whitened ``train`` (n, d).

    ``log_weights`` (n,) are log w_j (any scale, −inf allowed for zero weights; None for equal
    weights of 1). ``inv_factors`` (g,) are the inverse candidate scale factors 1/c (positive).
    Returns a float64 (n, g) array; an entry is −inf only when every other point contributes
    exactly 0 (compact kernels, or all other weights zero).
    """
    train = np.ascontiguousarray(train, dtype=np.float64)
    if train.ndim != 2:
        raise ValueError(f"train must be 2-D (n, d); got shape {train.shape}")
    n = train.shape[0]
    train_t = np.ascontiguousarray(train.T)
    code = KERNEL_CODES[kernel]
    inv_factors = np.ascontiguousarray(inv_factors, dtype=np.float64).reshape(-1)
    inv_f2 = inv_factors * inv_factors
    if log_weights is None:
        log_weights = np.zeros(n)
    log_weights = np.ascontiguousarray(log_weights, dtype=np.float64).reshape(-1)
    if log_weights.shape[0] != n:
        raise ValueError(f"log_weights must have shape ({n},); got {log_weights.shape}")
    out = np.empty((n, inv_f2.shape[0]), dtype=np.float64)
    if n == 0 or inv_f2.shape[0] == 0:
        return out
    shift = float(np.max(log_weights))
    if shift == -math.inf:
        out.fill(-math.inf)
        return out
    weights = np.exp(log_weights - shift)
    # A compact kernel's exact 0 is trustworthy unless some positive weight underflowed to 0.
    compact_zero_is_exact = not bool(np.any((weights == 0.0) & (log_weights > -math.inf)))
    tiny = _TINY * max(float(np.sum(weights)), 1.0)
    _loo_grid_driver(train, train_t, weights, log_weights, shift, inv_f2, code, tiny,
                     compact_zero_is_exact, out)
    return out
