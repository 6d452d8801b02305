"""The binned sum redone in log space at the grid nodes below the FFT's rounding floor (CPU).

log Σ_m c_m k(‖L⁻¹(g − m)‖) over the occupied nodes m of the binned grid, for each such node g,
pruned without loss: the occupied nodes are grouped in blocks of 8^d nodes, and the blocks in
superblocks of 4^d blocks; a group's whitened centre z and radius ρ (no node of it farther from z)
give the bound C k(‖z_g − z‖ − ρ) on its contribution (C its total weight; every profile is
non-increasing). The best block of the best superblock is summed first (S); then every superblock
and, inside it, every block whose bound is at least 2^-30 S / (number of groups) is summed
exactly, node by node. The groups left out add at most 2^-30 S together: the log is exact to
1e-9 (the binned estimate's own error against the density is far larger out there: each point
moves by up to a cell, which shifts a log density of −r²/2 by about r δ/h). Cost per node: the superblocks, the blocks of the superblocks kept and the
nodes of the blocks kept (against all occupied nodes for the plain sum).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._backend._numba_drivers import serial_and_parallel
from ._kde_cpu import _log_profile
from ._kernels import KERNEL_CODES

BLOCK = 8
SUPER = 4  # blocks per axis in a superblock (32^d nodes)
_SKIP = 30.0 * math.log(2.0)


@njit(cache=True)
def _bound(q, z, rho, logw, code):
    r2 = 0.0
    for i in range(q.shape[0]):
        t = q[i] - z[i]
        r2 += t * t
    gap = max(math.sqrt(r2) - rho, 0.0)
    return logw + _log_profile(code, gap * gap)


@njit(cache=True)
def _sum_block(q, node_z, node_logw, j0, j1, code, top, total):
    for j in range(j0, j1):
        r2 = 0.0
        for i in range(q.shape[0]):
            t = q[i] - node_z[j, i]
            r2 += t * t
        term = node_logw[j] + _log_profile(code, r2)
        if term == -math.inf:
            continue
        if term > top:
            total = total * math.exp(top - term) + 1.0
            top = term
        else:
            total += math.exp(term - top)
    return top, total


def _tails_body(queries, sup_z, sup_rho, sup_logw, sup_start, block_z, block_rho, block_logw, block_start,
                node_z, node_logw, code, out):
    ns = sup_z.shape[0]
    skip = _SKIP + math.log(max(ns + block_z.shape[0], 1))
    for k in prange(queries.shape[0]):
        q = queries[k]
        best_s, first_s = -math.inf, 0
        for s in range(ns):
            u = _bound(q, sup_z[s], sup_rho[s], sup_logw[s], code)
            if u > best_s:
                best_s, first_s = u, s
        best_b, first_b = -math.inf, sup_start[first_s]
        for b in range(sup_start[first_s], sup_start[first_s + 1]):
            u = _bound(q, block_z[b], block_rho[b], block_logw[b], code)
            if u > best_b:
                best_b, first_b = u, b
        top, total = _sum_block(q, node_z, node_logw, block_start[first_b], block_start[first_b + 1], code,
                                -math.inf, 0.0)
        threshold = (top + math.log(total) if total > 0 else -math.inf) - skip
        for s in range(ns):
            if _bound(q, sup_z[s], sup_rho[s], sup_logw[s], code) < threshold:
                continue
            for b in range(sup_start[s], sup_start[s + 1]):
                if b == first_b or _bound(q, block_z[b], block_rho[b], block_logw[b], code) < threshold:
                    continue
                top, total = _sum_block(q, node_z, node_logw, block_start[b], block_start[b + 1], code, top, total)
        out[k] = top + math.log(total) if total > 0 else -math.inf


_TAILS = serial_and_parallel(_tails_body)


def _groups(index, keys, weights, step, ext_lo, centre, A):
    """Per group of rows (``keys`` sorted): first row, whitened centre and radius of the rows' box,
    log total weight."""
    _, start = np.unique(keys, return_index=True)
    lo_idx = np.minimum.reduceat(index, start, axis=0)
    hi_idx = np.maximum.reduceat(index, start, axis=0)
    mid = ((lo_idx + hi_idx) / 2.0 * step + ext_lo - centre) @ A.T
    half = (hi_idx - lo_idx) / 2.0 * step
    rho = np.abs(half) @ np.sqrt(np.sum(A * A, axis=0))  # Σ_i |half_i| ‖A e_i‖ ≥ any row's distance
    with np.errstate(divide="ignore"):
        logw = np.log(np.add.reduceat(weights, start))
    return start, np.ascontiguousarray(mid), rho * (1.0 + 1e-12) + 1e-300, logw


def log_binned_sum(counts, ext_lo, step, A, centre, kernel, noisy_index):
    """log Σ_m c_m k(‖A(g − m)‖) at the nodes ``noisy_index`` (k, d) of the grid of ``counts``
    (first node ``ext_lo``, spacing ``step``), A = L⁻¹, coordinates taken about ``centre``."""
    shape = counts.shape
    d = len(shape)
    index = np.stack(np.nonzero(counts > 0), axis=1)  # occupied nodes (N, d)
    block_key = np.zeros(index.shape[0], dtype=np.int64)
    super_key = np.zeros(index.shape[0], dtype=np.int64)
    for i in range(d):
        nb = (shape[i] + BLOCK - 1) // BLOCK
        ns = (nb + SUPER - 1) // SUPER
        block_key = block_key * nb + index[:, i] // BLOCK
        super_key = super_key * ns + index[:, i] // (BLOCK * SUPER)
    order = np.lexsort((block_key, super_key))  # by superblock, then block
    index, block_key, super_key = index[order], block_key[order], super_key[order]
    weights = counts[tuple(index.T)]
    node_z = np.ascontiguousarray(((index * step + ext_lo) - centre) @ A.T)
    b_start, b_mid, b_rho, b_logw = _groups(index, super_key * (block_key.max() + 1) + block_key, weights,
                                            step, ext_lo, centre, A)
    s_start, s_mid, s_rho, s_logw = _groups(index, super_key, weights, step, ext_lo, centre, A)
    # each superblock's range of blocks: blocks are in superblock order, so by first rows
    sup_start = np.searchsorted(b_start, s_start).astype(np.int64)
    sup_start = np.append(sup_start, b_start.size).astype(np.int64)
    block_start = np.append(b_start, index.shape[0]).astype(np.int64)
    queries = np.ascontiguousarray(((noisy_index * step + ext_lo) - centre) @ A.T)
    out = np.empty(queries.shape[0])
    serial, parallel = _TAILS
    driver = parallel if queries.shape[0] > 16 else serial
    driver(queries, s_mid, s_rho, s_logw, sup_start, b_mid, b_rho, b_logw, block_start, node_z, np.log(weights),
           KERNEL_CODES[kernel], out)
    return out
