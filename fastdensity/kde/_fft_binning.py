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
from numba import njit, prange, uint64

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


# Each block's rows are binned by a serial loop called from a thin ``prange`` driver, in chunks
# of _CHUNK points and two phases: the first computes every point's cell index and fractions
# without a branch (a point outside the grid goes to a trash cell past the last node, with its
# fractions taken at t = 0), so that LLVM vectorises it; the second scatters the chunk's corner
# weights into the block's private grid. One loop doing both ran at 1.5 ns a point in 1-D, the
# two phases at 0.8 ns (measured 2026-12-07, 10⁶ points on 1,024 nodes, one thread). The loops
# index with unsigned integers on flat views: with signed indices Numba adds a negative-index
# wrap-around (shift, and, compare, select) to every access, and a 2-D view's row stride is
# multiplied out at every point (2-D, 2 threads: 4.5 ms before, 2.8 ms after, one loop). The
# grid's first node and inverse spacing come as scalars: read from arrays, they are reloaded at
# every point (the stores into the private grid may alias them, as far as LLVM can tell). Unit
# weights are w = 1 in the same arithmetic (1 · f is exact: the same bits as a separate loop),
# with a scatter loop of their own in 1-D, where the weight's load was a fifth of the work.
_CHUNK = 256


def trash_cells(shape) -> int:
    """Cells past the last node that the trash corners of :func:`bin_linear_cpu` can reach: the
    corner offsets of a cell are sums of the axes' strides."""
    strides = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    return int(sum(strides) + 1)


@njit(cache=True)
def _bin1_rows(x, w, has_w, j0, j1, lo0, inv0, n0, acc):
    top0, m0 = n0 - 1.0, uint64(n0 - 2)
    trash = uint64(n0)
    kb = np.empty(_CHUNK, dtype=np.uint64)
    fb = np.empty(_CHUNK)
    for s in range(j0, j1, _CHUNK):
        c = uint64(min(j1, s + _CHUNK) - s)
        u = uint64(s)
        for i in range(c):
            t0 = (x[u + i] - lo0) * inv0
            ok = (t0 >= 0.0) & (t0 <= top0)
            t0 = t0 if ok else 0.0
            k0 = min(uint64(t0), m0)
            kb[i] = k0 if ok else trash
            fb[i] = t0 - k0
        if has_w:
            for i in range(c):
                k0 = kb[i]
                a1 = w[u + i] * fb[i]
                acc[k0] += w[u + i] - a1
                acc[k0 + uint64(1)] += a1
        else:
            for i in range(c):
                k0 = kb[i]
                f0 = fb[i]
                acc[k0] += 1.0 - f0
                acc[k0 + uint64(1)] += f0


@njit(cache=True)
def _bin2_rows(x, w, has_w, j0, j1, lo0, lo1, inv0, inv1, n0, n1, acc):
    top0, top1 = n0 - 1.0, n1 - 1.0
    m0, m1, s1 = uint64(n0 - 2), uint64(n1 - 2), uint64(n1)
    trash = uint64(n0 * n1)
    one, two = uint64(1), uint64(2)
    kb = np.empty(_CHUNK, dtype=np.uint64)
    f0b = np.empty(_CHUNK)
    f1b = np.empty(_CHUNK)
    wb = np.ones(_CHUNK)
    for s in range(j0, j1, _CHUNK):
        c = uint64(min(j1, s + _CHUNK) - s)
        u = uint64(s)
        for i in range(c):
            r = two * (u + i)
            t0 = (x[r] - lo0) * inv0
            t1 = (x[r + one] - lo1) * inv1
            ok = (t0 >= 0.0) & (t0 <= top0) & (t1 >= 0.0) & (t1 <= top1)
            t0 = t0 if ok else 0.0
            t1 = t1 if ok else 0.0
            k0 = min(uint64(t0), m0)
            k1 = min(uint64(t1), m1)
            kb[i] = k0 * s1 + k1 if ok else trash
            f0b[i] = t0 - k0
            f1b[i] = t1 - k1
        if has_w:
            for i in range(c):
                wb[i] = w[u + i]
        for i in range(c):
            k = kb[i]
            wj = wb[i]
            f1 = f1b[i]
            a1 = wj * f0b[i]
            a0 = wj - a1
            b1 = a0 * f1
            c1 = a1 * f1
            acc[k] += a0 - b1
            acc[k + one] += b1
            acc[k + s1] += a1 - c1
            acc[k + s1 + one] += c1


@njit(cache=True)
def _bin3_rows(x, w, has_w, j0, j1, lo0, lo1, lo2, inv0, inv1, inv2, n0, n1, n2, acc):
    top0, top1, top2 = n0 - 1.0, n1 - 1.0, n2 - 1.0
    m0, m1, m2 = uint64(n0 - 2), uint64(n1 - 2), uint64(n2 - 2)
    s1, s2 = uint64(n1 * n2), uint64(n2)
    trash = uint64(n0 * n1 * n2)
    one, two, three = uint64(1), uint64(2), uint64(3)
    kb = np.empty(_CHUNK, dtype=np.uint64)
    f0b = np.empty(_CHUNK)
    f1b = np.empty(_CHUNK)
    f2b = np.empty(_CHUNK)
    wb = np.ones(_CHUNK)
    for s in range(j0, j1, _CHUNK):
        c = uint64(min(j1, s + _CHUNK) - s)
        u = uint64(s)
        for i in range(c):
            r = three * (u + i)
            t0 = (x[r] - lo0) * inv0
            t1 = (x[r + one] - lo1) * inv1
            t2 = (x[r + two] - lo2) * inv2
            ok = (t0 >= 0.0) & (t0 <= top0) & (t1 >= 0.0) & (t1 <= top1) & (t2 >= 0.0) & (t2 <= top2)
            t0 = t0 if ok else 0.0
            t1 = t1 if ok else 0.0
            t2 = t2 if ok else 0.0
            k0 = min(uint64(t0), m0)
            k1 = min(uint64(t1), m1)
            k2 = min(uint64(t2), m2)
            kb[i] = k0 * s1 + k1 * s2 + k2 if ok else trash
            f0b[i] = t0 - k0
            f1b[i] = t1 - k1
            f2b[i] = t2 - k2
        if has_w:
            for i in range(c):
                wb[i] = w[u + i]
        for i in range(c):
            k = kb[i]
            f0 = f0b[i]
            f1 = f1b[i]
            f2 = f2b[i]
            for c0 in range(2):
                a0 = wb[i] * (f0 if c0 else 1.0 - f0)
                for c1 in range(2):
                    a1 = a0 * (f1 if c1 else 1.0 - f1)
                    corner = k + uint64(c0) * s1 + uint64(c1) * s2
                    a2 = a1 * f2
                    acc[corner] += a1 - a2
                    acc[corner + one] += a2


# The drivers take the points as one flat row-major array x (n·d,) and the private grids as
# (nblocks, n_nodes + trash cells).
def _bin1_body(x, w, has_w, lo0, inv0, n0, nblocks, out):
    n = x.shape[0]
    per = (n + nblocks - 1) // nblocks
    for b in prange(nblocks):
        _bin1_rows(x, w, has_w, b * per, min(n, (b + 1) * per), lo0, inv0, n0, out[b])


def _bin2_body(x, w, has_w, lo0, lo1, inv0, inv1, n0, n1, nblocks, out):
    n = x.shape[0] // 2
    per = (n + nblocks - 1) // nblocks
    for b in prange(nblocks):
        _bin2_rows(x, w, has_w, b * per, min(n, (b + 1) * per), lo0, lo1, inv0, inv1, n0, n1, out[b])


def _bin3_body(x, w, has_w, lo0, lo1, lo2, inv0, inv1, inv2, n0, n1, n2, nblocks, out):
    n = x.shape[0] // 3
    per = (n + nblocks - 1) // nblocks
    for b in prange(nblocks):
        _bin3_rows(x, w, has_w, b * per, min(n, (b + 1) * per), lo0, lo1, lo2, inv0, inv1, inv2,
                   n0, n1, n2, out[b])


@njit(cache=True)
def _extremes_rows(x, d, j0, j1, low, high):
    # one pass in memory order over rows j0..j1 of the flat (n·d,) x, the running extremes in
    # registers (d ≤ 3), selects not branches, unsigned indices (no wrap-around code); it reads
    # at about the machine's memory bandwidth (measured 2026-12-07: 10⁶ × 2 float64 in 0.65 ms,
    # 25 GB/s, against a 27 GB/s read probe)
    du = uint64(d)
    r = uint64(j0) * du
    l0 = h0 = x[r]
    l1 = h1 = x[r + uint64(1)] if d > 1 else 0.0
    l2 = h2 = x[r + uint64(2)] if d > 2 else 0.0
    for j in range(uint64(j0) + uint64(1), uint64(j1)):
        r = j * du
        v = x[r]
        l0 = v if v < l0 else l0
        h0 = v if v > h0 else h0
        if d > 1:
            v = x[r + uint64(1)]
            l1 = v if v < l1 else l1
            h1 = v if v > h1 else h1
        if d > 2:
            v = x[r + uint64(2)]
            l2 = v if v < l2 else l2
            h2 = v if v > h2 else h2
    low[0] = l0
    high[0] = h0
    if d > 1:
        low[1] = l1
        high[1] = h1
    if d > 2:
        low[2] = l2
        high[2] = h2


def _extremes_body(x, d, nblocks, low, high):
    n = x.shape[0] // d
    per = (n + nblocks - 1) // nblocks
    for b in prange(nblocks):
        _extremes_rows(x, d, b * per, min(n, (b + 1) * per), low[b], high[b])


_EXTREMES = serial_and_parallel(_extremes_body)


def extremes_cpu(X):
    """(min, max) float64 (d,) of each column of NumPy ``X`` (n ≥ 1, 1 ≤ d ≤ 3) in one parallel pass."""
    X = np.ascontiguousarray(X)
    n, d = X.shape
    if d == 1:
        # NumPy's vectorised reductions of one contiguous column: two passes at cache speed beat
        # the compiled loop's one (its selects do not vectorise; measured 2026-12-07, 10⁶ points:
        # 0.25 ms against 0.72 ms). Across the columns of (n, d ≥ 2), NumPy's axis-0 reduction is
        # 40× slower than the loop.
        column = X.reshape(-1)
        return np.array([column.min()]), np.array([column.max()])
    nblocks = int(min(_MAX_BLOCKS, max(1, n // _POINTS_PER_BLOCK)))
    low = np.empty((nblocks, d))
    high = np.empty((nblocks, d))
    serial, parallel = _EXTREMES
    (parallel if nblocks > 1 else serial)(X.reshape(-1), d, nblocks, low, high)
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
    out = np.zeros((nblocks, n_nodes + trash_cells(shape)), dtype=np.float64)
    has_w = weights is not None
    w = np.ascontiguousarray(weights, dtype=np.float64) if has_w else np.ones(1)
    serial, parallel = _KERNELS[d]
    driver = parallel if nblocks > 1 else serial
    lo = [float(v) for v in np.asarray(lo, dtype=np.float64)]
    inv = [float(v) for v in 1.0 / np.asarray(step, dtype=np.float64)]
    driver(X.reshape(-1), w, has_w, *lo, *inv, *(int(s) for s in shape), nblocks, out)
    return (out[0, :n_nodes] if nblocks == 1 else out[:, :n_nodes].sum(axis=0)).reshape(shape)


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
