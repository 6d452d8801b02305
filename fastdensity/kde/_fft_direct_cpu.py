"""The binned density's convolution done directly, one axis at a time, for a separable window
(Numba, d ≤ 3): the alternative to the padded FFT where the window is narrow.

A window that is a product of one factor per axis, K(u) = Π_i f_i(u_i) (every window in 1-D; the
gaussian with per-feature bandwidths in 2-D and 3-D, ``_fft_grid.separable_factors``), turns the
d-dimensional sum y(g) = Σ_m c_m K(g − m) into d one-dimensional passes: along the last axis,
then along each axis before it, each pass a sum of 2 L_i + 1 terms per node. A pass computes only
the nodes the next one reads, and the last only the output grid (the extended grid's nodes
``start_i`` to ``start_i + n_i − 1``). The cost is Σ_i (2 L_i + 1) multiply-adds per node of each
pass, against 3 · 2.5 N log2 N flops of the padded FFTs: less when the window spans a few
dozen nodes, as it does for the default grids (10⁶ points, Scott's bandwidth: 121 taps in 1-D,
45 per axis in 2-D); ``_fft_evaluate.direct_is_cheaper`` makes the choice.

Every term is ≥ 0 (weights c ≥ 0, kernel factors ≥ 0), so each computed node carries a relative
error of at most (Σ_i (2 L_i + 1) + d) u (u = 2^-53; the sums' rounding, γ_k ≤ k u, and one
rounding per product of factors): there is no absolute rounding floor as there is after an FFT,
and values far in the tails keep their relative accuracy. The order of every sum is fixed and
each node is computed by one thread: the result does not depend on the thread count.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange, uint64

from .._backend._numba_drivers import serial_and_parallel

SERIAL_BELOW = 1 << 18  # multiply-adds: below this, one pass costs less than waking the thread team


# Unsigned indices in the loops (with signed ones Numba adds a negative-index wrap-around to
# every access, which keeps the saxpy loops from vectorising); every index is in range by the
# loop bounds.
def _inner_body(A, f, L, start, out):
    """out[r, g] = Σ_o A[r, start + g + o] f[L − o] over |o| ≤ L, the indices inside A's row:
    the last (contiguous) axis; a saxpy along g for each offset, so the loop vectorises."""
    R, E = A.shape
    n = out.shape[1]
    for r in prange(R):
        row = A[r]
        acc = out[r]
        for g in range(uint64(n)):
            acc[g] = 0.0
        for o in range(-L, L + 1):
            w = f[uint64(L - o)]
            g0 = uint64(max(0, -(start + o)))
            g1 = uint64(max(0, min(n, E - (start + o))))
            base = start + o
            for g in range(g0, g1):
                acc[g] += w * row[uint64(base + g)]


def _outer_body(A, f, L, start, out):
    """out[p, g, q] = Σ_o A[p, start + g + o, q] f[L − o] over |o| ≤ L inside A: a middle axis,
    with the contiguous axis q innermost (a saxpy along q for each offset)."""
    P, E, Q = A.shape
    n = out.shape[1]
    for t in prange(P * n):
        p = t // n
        g = t % n
        acc = out[p, g]
        for q in range(uint64(Q)):
            acc[q] = 0.0
        o0 = max(-L, -(start + g))
        o1 = min(L, E - 1 - (start + g))
        for o in range(o0, o1 + 1):
            w = f[uint64(L - o)]
            src = A[p, start + g + o]
            for q in range(uint64(Q)):
                acc[q] += w * src[q]


_INNER = serial_and_parallel(_inner_body)
_OUTER = serial_and_parallel(_outer_body)


def direct_cost(shape_ext, shape_out, half) -> int:
    """Multiply-adds of :func:`convolve_separable` (the passes as it runs them)."""
    d = len(shape_ext)
    rows = math.prod(shape_ext[:-1])
    total = rows * shape_out[-1] * (2 * half[-1] + 1)
    done = list(shape_ext[:-1]) + [shape_out[-1]]  # the shape after the last-axis pass
    for axis in range(d - 2, -1, -1):
        done[axis] = shape_out[axis]
        total += math.prod(done) * (2 * half[axis] + 1)
    return int(total)


def _run(pair, cost, *args):
    serial, parallel = pair
    (serial if cost < SERIAL_BELOW else parallel)(*args)


def convolve_separable(counts, factors, half, start, shape_out):
    """y = counts ⊛ (f_0 ⊗ … ⊗ f_{d−1}) at the output nodes: float64 array of ``shape_out``.

    ``counts``: the binned weights on the extended grid (float64, ≥ 0); ``factors[i]``: the
    window's factor along axis i, float64 of length 2 L_i + 1 with ``half[i]`` = L_i (offset o at
    index L_i + o); ``start[i]``: the extended-grid index of the first output node."""
    counts = np.ascontiguousarray(counts, dtype=np.float64)
    d = counts.ndim
    half = [int(v) for v in half]
    start = [int(v) for v in start]
    shape_out = [int(v) for v in shape_out]
    factors = [np.ascontiguousarray(f, dtype=np.float64) for f in factors]
    for i in range(d):
        if factors[i].shape != (2 * half[i] + 1,):
            raise ValueError(f"factor {i} must have {2 * half[i] + 1} taps; got shape {factors[i].shape}")
    ext = counts.shape
    # the last axis: every row of the extended grid, the output columns only
    rows = math.prod(ext[:-1])
    cur = np.empty((rows, shape_out[-1]))
    _run(_INNER, rows * shape_out[-1] * (2 * half[-1] + 1), counts.reshape(rows, ext[-1]), factors[-1],
         half[-1], start[-1], cur)
    shape = list(ext[:-1]) + [shape_out[-1]]
    for axis in range(d - 2, -1, -1):
        P = math.prod(shape[:axis])
        Q = math.prod(shape[axis + 1:])
        nxt = np.empty((P, shape_out[axis], Q))
        _run(_OUTER, P * shape_out[axis] * Q * (2 * half[axis] + 1), cur.reshape(P, shape[axis], Q),
             factors[axis], half[axis], start[axis], nxt)
        shape[axis] = shape_out[axis]
        cur = nxt
    return cur.reshape(shape_out)


def relative_rounding(half) -> float:
    """The relative error bound of :func:`convolve_separable`'s nodes: (Σ_i (2 L_i + 1) + d) u."""
    return (sum(2 * int(L) + 1 for L in half) + len(half)) * 2.0**-53
