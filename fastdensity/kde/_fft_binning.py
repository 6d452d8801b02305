"""Linear binning of weighted points onto a regular grid (d ≤ 3): Numba on the CPU, any array
namespace (CuPy) through ``bincount``.

A point at fractional grid position t (t_i = (x_i − lo_i) / δ_i) gives each of the 2^d corners
of its cell the weight w Π_i (1 − f_i or f_i), f_i = t_i − ⌊t_i⌋ (Fan & Marron 1994; the cell
index is clamped to the last cell, so a point on the upper edge has f_i = 1). Points outside
the grid (any t_i outside [0, n_i − 1]) are left out; the callers extend their grids so that such
points lie beyond the kernel's reach of every node they report.

The CPU kernels split the points into a fixed number of blocks, each summed by one thread into
its own copy of the grid, and add the copies in a fixed order: the result does not depend on the
number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._backend._numba_drivers import serial_and_parallel

# Each block's private grid; the blocks together stay under this many bytes, and under
# _CACHE_BYTES (about one core's L2 cache) where two blocks still fit: a grid that stays in
# cache takes the scattered additions faster than more blocks share the work (measured 2026-12-07,
# 10⁶ points on 256 × 256 nodes, 2 cores: 2 blocks 2.4 ms, 8 blocks 2.9 ms at best), and the
# copies are zeroed and added up in fewer passes.
_PRIVATE_BYTES = 1 << 25
_CACHE_BYTES = 1 << 20
_MAX_BLOCKS = 8
_POINTS_PER_BLOCK = 1 << 15


# The kernels take the grid's first node and inverse spacing as scalars: read from arrays, they
# are reloaded at every point (the stores into the private grid may alias them, as far as LLVM
# can tell).
def _bin1_body(x, w, has_w, lo0, inv0, n0, nblocks, out):
    n = x.shape[0]
    per = (n + nblocks - 1) // nblocks
    top0 = n0 - 1.0
    for b in prange(nblocks):
        acc = out[b]
        for j in range(b * per, min(n, (b + 1) * per)):
            t0 = (x[j, 0] - lo0) * inv0
            if not (t0 >= 0.0 and t0 <= top0):
                continue
            k0 = min(int(t0), n0 - 2)
            f0 = t0 - k0
            wj = w[j] if has_w else 1.0
            a1 = wj * f0
            acc[k0] += wj - a1
            acc[k0 + 1] += a1


def _bin2_body(x, w, has_w, lo0, lo1, inv0, inv1, n0, n1, nblocks, out):
    n = x.shape[0]
    per = (n + nblocks - 1) // nblocks
    top0, top1 = n0 - 1.0, n1 - 1.0
    for b in prange(nblocks):
        acc = out[b]
        for j in range(b * per, min(n, (b + 1) * per)):
            t0 = (x[j, 0] - lo0) * inv0
            t1 = (x[j, 1] - lo1) * inv1
            if not (t0 >= 0.0 and t0 <= top0 and t1 >= 0.0 and t1 <= top1):
                continue
            k0 = min(int(t0), n0 - 2)
            k1 = min(int(t1), n1 - 2)
            f0 = t0 - k0
            f1 = t1 - k1
            wj = w[j] if has_w else 1.0
            a1 = wj * f0
            a0 = wj - a1
            b1 = a0 * f1
            c1 = a1 * f1
            i = k0 * n1 + k1
            acc[i] += a0 - b1
            acc[i + 1] += b1
            acc[i + n1] += a1 - c1
            acc[i + n1 + 1] += c1


def _bin3_body(x, w, has_w, lo0, lo1, lo2, inv0, inv1, inv2, n0, n1, n2, nblocks, out):
    n = x.shape[0]
    per = (n + nblocks - 1) // nblocks
    top0, top1, top2 = n0 - 1.0, n1 - 1.0, n2 - 1.0
    s = n1 * n2
    for b in prange(nblocks):
        acc = out[b]
        for j in range(b * per, min(n, (b + 1) * per)):
            t0 = (x[j, 0] - lo0) * inv0
            t1 = (x[j, 1] - lo1) * inv1
            t2 = (x[j, 2] - lo2) * inv2
            if not (t0 >= 0.0 and t0 <= top0 and t1 >= 0.0 and t1 <= top1
                    and t2 >= 0.0 and t2 <= top2):
                continue
            k0 = min(int(t0), n0 - 2)
            k1 = min(int(t1), n1 - 2)
            k2 = min(int(t2), n2 - 2)
            f0 = t0 - k0
            f1 = t1 - k1
            f2 = t2 - k2
            wj = w[j] if has_w else 1.0
            for c0 in range(2):
                a0 = wj * (f0 if c0 else 1.0 - f0)
                for c1 in range(2):
                    a1 = a0 * (f1 if c1 else 1.0 - f1)
                    i = (k0 + c0) * s + (k1 + c1) * n2 + k2
                    a2 = a1 * f2
                    acc[i] += a1 - a2
                    acc[i + 1] += a2


def _extremes_body(X, nblocks, low, high):
    n, d = X.shape
    per = (n + nblocks - 1) // nblocks
    for b in prange(nblocks):
        j0 = b * per
        j1 = min(n, j0 + per)
        # one pass in memory order, running extremes in registers (d ≤ 3), selects not branches
        l0 = h0 = X[j0, 0]
        l1 = h1 = X[j0, 1] if d > 1 else 0.0
        l2 = h2 = X[j0, 2] if d > 2 else 0.0
        for j in range(j0 + 1, j1):
            v = X[j, 0]
            l0 = v if v < l0 else l0
            h0 = v if v > h0 else h0
            if d > 1:
                v = X[j, 1]
                l1 = v if v < l1 else l1
                h1 = v if v > h1 else h1
            if d > 2:
                v = X[j, 2]
                l2 = v if v < l2 else l2
                h2 = v if v > h2 else h2
        low[b, 0] = l0
        high[b, 0] = h0
        if d > 1:
            low[b, 1] = l1
            high[b, 1] = h1
        if d > 2:
            low[b, 2] = l2
            high[b, 2] = h2


_EXTREMES = serial_and_parallel(_extremes_body)


def extremes_cpu(X):
    """(min, max) float64 (d,) of each column of NumPy ``X`` (n ≥ 1, 1 ≤ d ≤ 3) in one parallel pass."""
    X = np.ascontiguousarray(X)
    n, d = X.shape
    nblocks = int(min(_MAX_BLOCKS, max(1, n // _POINTS_PER_BLOCK)))
    low = np.empty((nblocks, d))
    high = np.empty((nblocks, d))
    serial, parallel = _EXTREMES
    (parallel if nblocks > 1 else serial)(X, nblocks, low, high)
    return low.min(axis=0), high.max(axis=0)


_KERNELS = {d: serial_and_parallel(body) for d, body in ((1, _bin1_body), (2, _bin2_body), (3, _bin3_body))}


def block_count(n_points: int, n_nodes: int) -> int:
    """How many private grids the CPU binning uses (a function of the sizes only)."""
    by_points = max(1, n_points // _POINTS_PER_BLOCK)
    grid_bytes = 8 * max(n_nodes, 1)
    by_memory = max(1, _PRIVATE_BYTES // grid_bytes)
    by_cache = max(2, _CACHE_BYTES // grid_bytes)
    return int(min(_MAX_BLOCKS, by_points, by_memory, by_cache))


def bin_linear_cpu(X, weights, lo, step, shape):
    """Linear binning of NumPy ``X`` (n, d) with ``weights`` (n,) float64 or None (all 1) onto
    the grid of ``shape`` with first node ``lo`` and spacing ``step``: float64 array of ``shape``."""
    X = np.ascontiguousarray(X)
    n, d = X.shape
    n_nodes = math.prod(shape)
    nblocks = block_count(n, n_nodes)
    out = np.zeros((nblocks, n_nodes), dtype=np.float64)
    has_w = weights is not None
    w = np.ascontiguousarray(weights, dtype=np.float64) if has_w else np.ones(1)
    serial, parallel = _KERNELS[d]
    driver = parallel if nblocks > 1 else serial
    lo = [float(v) for v in np.asarray(lo, dtype=np.float64)]
    inv = [float(v) for v in 1.0 / np.asarray(step, dtype=np.float64)]
    driver(X, w, has_w, *lo, *inv, *(int(s) for s in shape), nblocks, out)
    return (out[0] if nblocks == 1 else out.sum(axis=0)).reshape(shape)


def bin_linear_xp(xp, X, weights, lo, step, shape):
    """:func:`bin_linear_cpu` in array namespace ``xp`` (NumPy or CuPy): one weighted
    ``bincount`` per corner of the cell."""
    n, d = X.shape
    lo = xp.asarray(np.asarray(lo, dtype=np.float64))
    inv = xp.asarray(1.0 / np.asarray(step, dtype=np.float64))
    sizes = xp.asarray(np.asarray(shape, dtype=np.float64))
    t = (X.astype(xp.float64) - lo) * inv
    inside = xp.all((t >= 0) & (t <= sizes - 1), axis=1)
    t = t[inside]
    w = xp.ones(t.shape[0]) if weights is None else xp.asarray(weights, dtype=xp.float64)[inside]
    k = xp.minimum(xp.floor(t), sizes - 2).astype(xp.int64)
    f = t - k
    strides = [math.prod(shape[i + 1:]) for i in range(d)]
    n_nodes = math.prod(shape)
    out = xp.zeros(n_nodes, dtype=xp.float64)
    for corner in range(2**d):
        index = xp.zeros(t.shape[0], dtype=xp.int64)
        value = w
        for i in range(d):
            up = (corner >> (d - 1 - i)) & 1
            index = index + (k[:, i] + up) * strides[i]
            value = value * (f[:, i] if up else 1.0 - f[:, i])
        out += xp.bincount(index, weights=value, minlength=n_nodes)
    return out.reshape(shape)
