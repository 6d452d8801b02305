"""Multilinear interpolation of the fft scoring grid's two fields at query points (Numba, d ≤ 3).

The same arithmetic as the namespace-generic ``_fft_score.interpolate`` in one parallel pass per
query (no temporaries of size m × 2^d): the cell index is clamped to the last cell, a query
outside the grid gets ``inside = False`` and zeros.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._backend._numba_drivers import serial_and_parallel

SERIAL_BELOW = 20_000  # queries: below this the thread team costs more than the work


@njit(cache=True)
def _cell(x, lo, inv, n):
    t = (x - lo) * inv
    if not (t >= 0.0 and t <= n - 1):
        return -1, 0.0
    k = min(int(t), n - 2)
    return k, t - k


def _interp1_body(X, lo, inv, shape, fields, value, bound, inside):
    n0 = shape[0]
    for q in prange(X.shape[0]):
        k0, f0 = _cell(X[q, 0], lo[0], inv[0], n0)
        if k0 < 0:
            inside[q] = False
            value[q] = 0.0
            bound[q] = 0.0
            continue
        inside[q] = True
        value[q] = (1.0 - f0) * fields[0, k0] + f0 * fields[0, k0 + 1]
        bound[q] = (1.0 - f0) * fields[1, k0] + f0 * fields[1, k0 + 1]


def _interp2_body(X, lo, inv, shape, fields, value, bound, inside):
    n0, n1 = shape[0], shape[1]
    for q in prange(X.shape[0]):
        k0, f0 = _cell(X[q, 0], lo[0], inv[0], n0)
        k1, f1 = _cell(X[q, 1], lo[1], inv[1], n1)
        if k0 < 0 or k1 < 0:
            inside[q] = False
            value[q] = 0.0
            bound[q] = 0.0
            continue
        inside[q] = True
        i = k0 * n1 + k1
        w00 = (1.0 - f0) * (1.0 - f1)
        w01 = (1.0 - f0) * f1
        w10 = f0 * (1.0 - f1)
        w11 = f0 * f1
        j = i + n1
        value[q] = w00 * fields[0, i] + w01 * fields[0, i + 1] + w10 * fields[0, j] + w11 * fields[0, j + 1]
        bound[q] = w00 * fields[1, i] + w01 * fields[1, i + 1] + w10 * fields[1, j] + w11 * fields[1, j + 1]


def _interp3_body(X, lo, inv, shape, fields, value, bound, inside):
    n0, n1, n2 = shape[0], shape[1], shape[2]
    s = n1 * n2
    for q in prange(X.shape[0]):
        k0, f0 = _cell(X[q, 0], lo[0], inv[0], n0)
        k1, f1 = _cell(X[q, 1], lo[1], inv[1], n1)
        k2, f2 = _cell(X[q, 2], lo[2], inv[2], n2)
        if k0 < 0 or k1 < 0 or k2 < 0:
            inside[q] = False
            value[q] = 0.0
            bound[q] = 0.0
            continue
        inside[q] = True
        v = 0.0
        b = 0.0
        for c0 in range(2):
            a0 = f0 if c0 else 1.0 - f0
            for c1 in range(2):
                a1 = a0 * (f1 if c1 else 1.0 - f1)
                i = (k0 + c0) * s + (k1 + c1) * n2 + k2
                v += a1 * ((1.0 - f2) * fields[0, i] + f2 * fields[0, i + 1])
                b += a1 * ((1.0 - f2) * fields[1, i] + f2 * fields[1, i + 1])
        value[q] = v
        bound[q] = b


_KERNELS = {d: serial_and_parallel(body) for d, body in ((1, _interp1_body), (2, _interp2_body), (3, _interp3_body))}


def interpolate_cpu(grid, fields, X):
    """(value, bound, inside) at the rows of NumPy ``X`` (m, d); see ``_fft_score.interpolate``."""
    X = np.ascontiguousarray(X)
    m, d = X.shape
    value = np.empty(m)
    bound = np.empty(m)
    inside = np.empty(m, dtype=np.bool_)
    serial, parallel = _KERNELS[d]
    driver = serial if m < SERIAL_BELOW else parallel
    driver(X, np.asarray(grid["lo"], dtype=np.float64), 1.0 / np.asarray(grid["step"], dtype=np.float64),
           tuple(int(n) for n in grid["shape"]), fields, value, bound, inside)
    return value, bound, inside
