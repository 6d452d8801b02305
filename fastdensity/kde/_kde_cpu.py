"""Numba engine for exact kernel sums on the CPU.

The op ``kde_logsum`` computes, for every query q_i (rows of ``queries``, already whitened to
unit bandwidth),

    log Σ_j w_j · k(‖q_i − x_j‖ · s_j)

with ``k`` a unit-scale kernel profile (``_kernels.py``), w_j > 0 the weights and s_j optional
per-point inverse scales (adaptive bandwidths). Normalising constants are the caller's job.

Design (see DESIGN.md, "Numerics"):

* ``prange`` over queries (in blocks of up to ``QUERY_BLOCK``); each query's sum is computed by
  one thread in a fixed order over the training points (in tiles of ``TILE`` points summed in the
  working dtype and added in float64), so results do not depend on the thread count or the block.
  A block's queries take each tile in turn while it is in cache, so a training set beyond the
  last-level cache is read once per block, not once per query (d = 8, n = 10⁶: 0.86 G pairs/s
  before, 2.1 after, measured 2026-12-07 on 2 cores). Memory is O(n + m).
* The training set is stored transposed, (d, n), so the loop over training points is
  contiguous and vectorises; for d ≤ ``MAX_UNROLLED_D`` the dimension is a compile-time constant
  (the length of a tuple argument), so LLVM unrolls the loop over dimensions. Larger d compute
  the squared distances of a tile into a buffer, one dimension at a time.
* The exponential is ``fast_exp_neg`` (vectorisable). A query whose plain sum is tiny (all
  terms near or below the underflow threshold) is recomputed in log space with a running
  maximum: ordinary queries pay nothing for underflow-safety, far ones still get a finite,
  correct log density. Compact kernels give exactly −inf outside their support.
* float32 inputs run float32 arithmetic per tile and accumulate across tiles in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._backend._fastexp import FASTMATH, fast_exp_neg
from .._backend._numba_drivers import serial_and_parallel
from ._kernels import (BIWEIGHT, EPANECHNIKOV, EXPONENTIAL, GAUSSIAN, KERNEL_CODES, LINEAR, TOPHAT,
                       TRIWEIGHT)

MAX_UNROLLED_D = 16
TILE = 512
QUERY_BLOCK = 64
# A plain sum below this fraction of Σw (max weight scaled to 1) may have lost terms to
# underflow; such queries are recomputed in log space.
_TINY = {np.dtype(np.float64): 1e-280, np.dtype(np.float32): 1e-30}


# Constants of the working dtype, passed into the kernels as a tuple: Numba types a Python float
# literal as float64, so ``0.5 * x`` with x float32 would silently run in float64 (measured: the
# float32 path was slower than float64 until the constants were typed).
_COS_COEFFS = (1.0, -0.5, 1.0 / 24.0, -1.0 / 720.0, 1.0 / 40320.0, -1.0 / 3628800.0,
               1.0 / 479001600.0, -1.0 / 87178291200.0, 1.0 / 20922789888000.0)
_SIN_COEFFS = (1.0, -1.0 / 6.0, 1.0 / 120.0, -1.0 / 5040.0, 1.0 / 362880.0, -1.0 / 39916800.0,
               1.0 / 6227020800.0, -1.0 / 1307674368000.0, 1.0 / 355687428096000.0)
_CONST_VALUES = (0.0, 1.0, 0.5, 0.5 * math.pi) + _COS_COEFFS + _SIN_COEFFS
_ZERO, _ONE, _HALF, _HALF_PI, _COS0, _SIN0 = 0, 1, 2, 3, 4, 13
CONSTANTS = {np.dtype(t): tuple(t(v) for v in _CONST_VALUES) for t in (np.float32, np.float64)}


@njit(inline="always", fastmath=FASTMATH)
def _profile(code, r2, c):
    """k(r) from r² for the unit-scale kernel ``code``; ``c`` is ``CONSTANTS[dtype]``."""
    zero = c[_ZERO]
    one = c[_ONE]
    if code == GAUSSIAN:
        return fast_exp_neg(-(r2 * c[_HALF]))
    if code == EXPONENTIAL:
        return fast_exp_neg(-np.sqrt(r2))
    if code == TOPHAT:
        return one if r2 < one else zero
    if code == EPANECHNIKOV:
        v = one - r2
        return v if v > zero else zero
    if code == BIWEIGHT:
        v = one - r2
        return v * v if v > zero else zero
    if code == TRIWEIGHT:
        v = one - r2
        return v * v * v if v > zero else zero
    if code == LINEAR:
        v = one - np.sqrt(r2)
        return v if v > zero else zero
    # cosine
    r = np.sqrt(r2)
    return _cos_half_pi(r, c) if r < one else zero


@njit(inline="always", fastmath=FASTMATH)
def _cos_half_pi(r, c):
    """cos(π r / 2) for 0 ≤ r ≤ 1 as straight-line polynomials (``np.cos`` is a scalar libm call
    that stops the loop from vectorising). For r ≤ 1/2 the cosine series in x = π r / 2 ≤ π/4;
    above, sin(π (1 − r) / 2), which keeps full relative accuracy as the value goes to 0 at the
    support's edge. Taylor to degree 16/17 on [0, π/4]: truncation below 3e-18."""
    x = r * c[_HALF_PI]
    y = (c[_ONE] - r) * c[_HALF_PI]
    x2 = x * x
    y2 = y * y
    cos_x = c[_COS0 + 8]
    sin_y = c[_SIN0 + 8]
    for i in range(7, -1, -1):
        cos_x = cos_x * x2 + c[_COS0 + i]
        sin_y = sin_y * y2 + c[_SIN0 + i]
    return cos_x if r <= c[_HALF] else sin_y * y


@njit(inline="always")
def _log_profile(code, r2):
    """log k(r) from r² in float64 (the slow, exact path)."""
    if code == GAUSSIAN:
        return -0.5 * r2
    if code == EXPONENTIAL:
        return -math.sqrt(r2)
    if r2 >= 1.0:
        return -math.inf
    if code == TOPHAT:
        return 0.0
    if code == EPANECHNIKOV:
        return math.log1p(-r2)
    if code == BIWEIGHT:
        return 2.0 * math.log1p(-r2)
    if code == TRIWEIGHT:
        return 3.0 * math.log1p(-r2)
    r = math.sqrt(r2)
    if code == LINEAR:
        return math.log1p(-r)
    return math.log(math.cos(0.5 * math.pi * r))


@njit(inline="always", fastmath=FASTMATH)
def _tile_sum_unrolled(q_row, train_t, weights, inv_scale2, adaptive, code, j0, j1, dims, c):
    """Σ_j w_j k(r_j) over training points j0..j1 for d = len(dims), unrolled over dimensions."""
    D = len(dims)
    # The zero comes from the constants, not from the running sum: a zero derived from ``s``
    # would chain every r² to the reduction and stop vectorisation.
    zero = c[_ZERO]
    s = zero
    # Unsigned bounds: with a signed start Numba adds negative-index wraparound checks to every
    # load, which halves the throughput of this loop.
    u0 = np.uint64(j0)
    u1 = np.uint64(j1)
    if adaptive:
        for j in range(u0, u1):
            r2 = zero
            for k in range(D):
                a = train_t[k, j] - q_row[k]
                r2 += a * a
            s += weights[j] * _profile(code, r2 * inv_scale2[j], c)
    else:
        for j in range(u0, u1):
            r2 = zero
            for k in range(D):
                a = train_t[k, j] - q_row[k]
                r2 += a * a
            s += weights[j] * _profile(code, r2, c)
    return s


@njit(inline="always", fastmath=FASTMATH)
def _tile_sum_buffered(q_row, train_t, weights, inv_scale2, adaptive, code, j0, j1, r2buf, c):
    """The same sum for any d: squared distances of the tile into ``r2buf``, one dimension at a time."""
    nt = np.uint64(j1 - j0)
    j0 = np.uint64(j0)
    zero = c[_ZERO]
    for jj in range(nt):
        r2buf[jj] = zero
    for k in range(train_t.shape[0]):
        qk = q_row[k]
        for jj in range(nt):
            a = train_t[k, j0 + jj] - qk
            r2buf[jj] += a * a
    s = zero
    if adaptive:
        for jj in range(nt):
            s += weights[j0 + jj] * _profile(code, r2buf[jj] * inv_scale2[j0 + jj], c)
    else:
        for jj in range(nt):
            s += weights[j0 + jj] * _profile(code, r2buf[jj], c)
    return s


@njit(inline="always")
def lse_push(best, total, term):
    """One term into a running log-sum-exp: ``best`` is the largest term so far, ``total`` the sum
    of exp(term − best); the log-sum is best + log(total) (−inf while best is −inf). Never
    overflows or underflows to a wrong result, whatever the terms' range. The one definition of
    the underflow-safe log-sum-exp of the KDE sums (here and in ``_kde_cv_cpu``)."""
    if term == -math.inf:
        return best, total
    if term > best:
        return term, total * math.exp(best - term) + 1.0
    return best, total + math.exp(term - best)


@njit(inline="always")
def _logsum_slow(q_row, train_t, log_weights, inv_scale2, adaptive, code, skip):
    """log Σ_j exp(log w_j + log k(r_j)) with a running maximum, in float64 (underflow-proof).

    ``skip`` ≥ 0 leaves that training point out (leave-one-out). A NaN query gives NaN."""
    d, n = train_t.shape
    best = -math.inf
    total = 0.0
    for j in range(n):
        if j == skip:
            continue
        r2 = 0.0
        for k in range(d):
            a = np.float64(train_t[k, j]) - np.float64(q_row[k])
            r2 += a * a
        if adaptive:
            r2 *= inv_scale2[j]
        best, total = lse_push(best, total, log_weights[j] + _log_profile(code, r2))
    if best == -math.inf:
        for k in range(d):
            if math.isnan(q_row[k]):
                return math.nan
        return -math.inf
    return best + math.log(total)


@njit(inline="always")
def _finish(total, tiny, log_weight_shift, code):
    """Log of a plain sum, or NaN to ask for the log-space recomputation."""
    if total > tiny:
        return math.log(total) + log_weight_shift
    if total == 0.0 and code != GAUSSIAN and code != EXPONENTIAL:
        return -math.inf  # compact kernel, outside the support of every training point
    return math.nan


@njit(fastmath=FASTMATH, cache=True)
def _block_logsum(queries, i0, i1, train_t, weights, log_weights, log_weight_shift, inv_scale2, adaptive,
                  kernel_marker, tiny, out, dims, r2buf, c):
    """out[i] for queries i0..i1, the tiles in the outer loop: each tile of training points is
    read from memory once per block of queries and reused from cache by all of them (one query at
    a time reread the whole training set, which beyond the last-level cache made the sum memory
    bound). Every query still sums its tiles in order 0, TILE, 2·TILE, …: the result does not
    depend on the block size. ``dims`` (0,) * d: the tile sum unrolled over d; () for any d, with
    the squared distances in ``r2buf`` (a tuple's length is a compile-time constant: each version
    compiles one branch)."""
    code = len(kernel_marker) - 1
    n = train_t.shape[1]
    totals = np.zeros(i1 - i0)
    for j0 in range(0, n, TILE):
        j1 = min(n, j0 + TILE)
        for i in range(i0, i1):
            if len(dims) > 0:
                s = _tile_sum_unrolled(queries[i], train_t, weights, inv_scale2, adaptive, code, j0, j1, dims, c)
            else:
                s = _tile_sum_buffered(queries[i], train_t, weights, inv_scale2, adaptive, code, j0, j1, r2buf, c)
            totals[i - i0] += s
    for i in range(i0, i1):
        v = _finish(totals[i - i0], tiny, log_weight_shift, code)
        if math.isnan(v):
            v = _logsum_slow(queries[i], train_t, log_weights, inv_scale2, adaptive, code, -1)
        out[i] = v


# The drivers are thin (each compiled serial and parallel from one body, see _numba_drivers):
# parfor compilation is slow on a large body, so the per-query work lives in the functions above.
#
# The kernel arrives as ``kernel_marker``, a tuple whose length is the kernel code + 1: its type
# differs per kernel, so Numba compiles one version per kernel (only those a call needs) in which
# LLVM sees the code as a constant and vectorises that kernel's branch alone. A runtime code would
# compile all eight branches into one loop that no longer vectorises (5× slower, measured), and
# ``numba.literally`` goes through the compiler on every call (25–40 ms each, measured); type
# dispatch on a tuple costs microseconds.
def make_kernel_marker(kernel: str) -> tuple:
    return (0,) * (KERNEL_CODES[kernel] + 1)


def _kde_logsum_unrolled(queries, train_t, weights, log_weights, log_weight_shift, inv_scale2,
                         adaptive, kernel_marker, tiny, out, dims, c, block):
    m = queries.shape[0]
    for b in prange((m + block - 1) // block):
        _block_logsum(queries, b * block, min(m, (b + 1) * block), train_t, weights, log_weights,
                      log_weight_shift, inv_scale2, adaptive, kernel_marker, tiny, out, dims,
                      np.empty(0, dtype=train_t.dtype), c)


def _kde_logsum_buffered(queries, train_t, weights, log_weights, log_weight_shift, inv_scale2,
                         adaptive, kernel_marker, tiny, out, c, block):
    m = queries.shape[0]
    for b in prange((m + block - 1) // block):
        _block_logsum(queries, b * block, min(m, (b + 1) * block), train_t, weights, log_weights,
                      log_weight_shift, inv_scale2, adaptive, kernel_marker, tiny, out, (),
                      np.empty(TILE, dtype=train_t.dtype), c)


# Serial twins for small problems: waking the OpenMP team costs more than the work below about a
# million pairs (measured: 3–9 ms for 500 pairs on a loaded machine, against microseconds serially).
SERIAL_BELOW_PAIRS = 1 << 20
kde_logsum_unrolled_serial, kde_logsum_unrolled = serial_and_parallel(_kde_logsum_unrolled)
kde_logsum_buffered_serial, kde_logsum_buffered = serial_and_parallel(_kde_logsum_buffered)


def query_block(m: int, limit: int = QUERY_BLOCK) -> int:
    """Queries per block of the drivers (here and in ``_kde_metric_cpu``): ``limit``, or fewer so
    that every thread still gets about four blocks when there are few queries."""
    import numba

    return int(max(1, min(limit, m // (4 * numba.get_num_threads()))))


def _prepare_weights(log_weights, n, dtype):
    """Scaled weights w_j / max w (in the working dtype), their float64 logs and the shift."""
    if log_weights is None:
        log_weights = np.zeros(n)
    log_weights = np.ascontiguousarray(log_weights, dtype=np.float64)
    shift = float(np.max(log_weights))
    weights = np.exp(log_weights - shift).astype(dtype)
    return weights, log_weights, shift


def kde_logsum(queries, train, log_weights=None, kernel="gaussian", inv_scales=None, *,
               train_t=None):
    """log Σ_j w_j k(‖q_i − x_j‖ s_j) for whitened ``queries`` (m, d) and ``train`` (n, d).

    ``log_weights`` (n,) are log w_j (any scale; None for equal weights of 1); ``inv_scales`` (n,)
    optional per-point inverse bandwidth factors. ``train_t`` may pass a prepared contiguous
    (d, n) transpose of ``train`` to avoid recomputing it. Returns float64 (m,).
    Both arrays must have the same floating dtype (float32 or float64).
    """
    queries = np.ascontiguousarray(queries)
    dtype = queries.dtype
    if train_t is None:
        train_t = np.ascontiguousarray(np.asarray(train).T, dtype=dtype)
    d, n = train_t.shape
    if queries.ndim != 2 or queries.shape[1] != d:
        raise ValueError(f"queries must have shape (m, {d}); got {queries.shape}")
    if train_t.dtype != dtype or dtype not in (np.float32, np.float64):
        raise TypeError(f"queries and train must both be float32 or both float64; got {dtype} and {train_t.dtype}")
    if n == 0:
        raise ValueError("the training set is empty")
    marker = make_kernel_marker(kernel)
    weights, log_w, shift = _prepare_weights(log_weights, n, dtype)
    adaptive = inv_scales is not None
    if adaptive:
        inv_scale2 = np.ascontiguousarray(np.asarray(inv_scales, dtype=np.float64) ** 2).astype(dtype)
    else:
        inv_scale2 = np.ones(1, dtype=dtype)
    # The tiny-sum threshold is relative to Σw (weights scaled so that max w = 1).
    tiny = _TINY[np.dtype(dtype)] * max(float(np.sum(weights, dtype=np.float64)), 1.0)
    out = np.empty(queries.shape[0], dtype=np.float64)
    if queries.shape[0] == 0:
        return out
    serial = queries.shape[0] * n < SERIAL_BELOW_PAIRS
    consts = CONSTANTS[np.dtype(dtype)]
    if d <= MAX_UNROLLED_D:
        driver = kde_logsum_unrolled_serial if serial else kde_logsum_unrolled
        driver(queries, train_t, weights, log_w, shift, inv_scale2, adaptive, marker, tiny, out,
               (0,) * d, consts, query_block(queries.shape[0]))
    else:
        driver = kde_logsum_buffered_serial if serial else kde_logsum_buffered
        driver(queries, train_t, weights, log_w, shift, inv_scale2, adaptive, marker, tiny, out, consts,
               query_block(queries.shape[0]))
    return out
