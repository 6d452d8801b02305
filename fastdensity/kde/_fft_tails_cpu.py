"""The binned sum redone in log space at the grid nodes below the FFT's rounding floor (CPU).

log Σ_m c_m k(‖L⁻¹(g − m)‖) over the occupied nodes m of the binned grid, for each such node g,
pruned without loss: the occupied nodes are grouped in blocks of B^d nodes; a block's whitened
centre z_b and radius ρ_b (no node of it farther from z_b) give the bound C_b k(‖z_g − z_b‖ − ρ_b)
on its contribution (C_b its total weight; every profile is non-increasing). The block with the
largest bound is summed first (S); then every block whose bound is at least 2^-60 S / (number of
blocks) is summed exactly, node by node. The blocks left out add at most 2^-60 S together, below
float64's rounding of the result. Cost: the number of blocks plus the nodes of the blocks summed,
per node (against all occupied nodes for the plain sum).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._backend._numba_drivers import serial_and_parallel
from ._kde_cpu import _log_profile
from ._kernels import KERNEL_CODES

BLOCK = 8
_SKIP = 60.0 * math.log(2.0)


def _tails_body(queries, block_z, block_rho, block_logw, block_start, node_z, node_logw, code, out):
    nb = block_z.shape[0]
    d = queries.shape[1]
    skip = _SKIP + math.log(max(nb, 1))
    for q in prange(queries.shape[0]):
        bounds = np.empty(nb)
        best = -math.inf
        first = 0
        for b in range(nb):
            r2 = 0.0
            for i in range(d):
                t = queries[q, i] - block_z[b, i]
                r2 += t * t
            gap = max(math.sqrt(r2) - block_rho[b], 0.0)
            bounds[b] = block_logw[b] + _log_profile(code, gap * gap)
            if bounds[b] > best:
                best = bounds[b]
                first = b
        top = -math.inf
        total = 0.0
        threshold = -math.inf
        for rank in range(2):  # 0: the best block; 1: every other block within reach of it
            for b in range(nb):
                if rank == 0 and b != first:
                    continue
                if rank == 1 and (b == first or bounds[b] < threshold):
                    continue
                for j in range(block_start[b], block_start[b + 1]):
                    r2 = 0.0
                    for i in range(d):
                        t = queries[q, i] - node_z[j, i]
                        r2 += t * t
                    term = node_logw[j] + _log_profile(code, r2)
                    if term == -math.inf:
                        continue
                    if term > top:
                        total = total * math.exp(top - term) + 1.0
                        top = term
                    else:
                        total += math.exp(term - top)
            threshold = (top + math.log(total) if total > 0 else -math.inf) - skip
        out[q] = top + math.log(total) if total > 0 else -math.inf


_TAILS = serial_and_parallel(_tails_body)


def log_binned_sum(counts, ext_lo, step, A, centre, kernel, noisy_index):
    """log Σ_m c_m k(‖A(g − m)‖) at the nodes ``noisy_index`` (k, d) of the grid of ``counts``
    (first node ``ext_lo``, spacing ``step``), A = L⁻¹, coordinates taken about ``centre``."""
    shape = counts.shape
    d = len(shape)
    nblocks_axis = [(n + BLOCK - 1) // BLOCK for n in shape]
    index = np.stack(np.nonzero(counts > 0), axis=1)  # occupied nodes, (N, d) in C order
    block_of = np.zeros(index.shape[0], dtype=np.int64)
    for i in range(d):
        block_of = block_of * nblocks_axis[i] + index[:, i] // BLOCK
    order = np.argsort(block_of, kind="stable")
    index, block_of = index[order], block_of[order]
    node_z = ((index * step + ext_lo) - centre) @ A.T
    node_logw = np.log(counts[tuple(index.T)])
    _, start = np.unique(block_of, return_index=True)
    block_start = np.append(start, index.shape[0]).astype(np.int64)
    weight = np.add.reduceat(counts[tuple(index.T)], start)
    # a block's centre and radius in whitened coordinates, from its own nodes' box
    lo_idx = np.minimum.reduceat(index, start, axis=0)
    hi_idx = np.maximum.reduceat(index, start, axis=0)
    mid = ((lo_idx + hi_idx) / 2.0 * step + ext_lo - centre) @ A.T
    half = (hi_idx - lo_idx) / 2.0 * step
    rho = np.abs(half) @ np.sqrt(np.sum(A * A, axis=0))  # Σ_i |half_i| ‖A e_i‖ ≥ any node's distance
    queries = np.ascontiguousarray(((noisy_index * step + ext_lo) - centre) @ A.T)
    out = np.empty(queries.shape[0])
    serial, parallel = _TAILS
    driver = parallel if queries.shape[0] > 16 else serial
    driver(queries, np.ascontiguousarray(mid), rho * (1.0 + 1e-12), np.log(weight), block_start,
           np.ascontiguousarray(node_z), node_logw, KERNEL_CODES[kernel], out)
    return out
