"""CUDA launcher for exact kernel sums: the GPU twin of ``_kde_cpu.kde_logsum`` (kernels/kde.cu).

Same signature and contract as the CPU op: whitened CuPy ``queries`` (m, d) and ``train`` (n, d)
(or its prepared (d, n) transpose ``train_t``) of one floating dtype, optional log weights and
per-point inverse scales; returns a CuPy float64 array (m,) on the current device. This module
imports without CuPy (the name expressions below are used by the compile check in CI).

Launch geometry (computed here, never in an estimator): one thread per query, ``BLOCK`` queries
per block; when the query blocks alone would not fill the chip (``BLOCKS_PER_SM`` blocks per
multiprocessor), the training points are split over ``blockIdx.y`` in multiples of the tile and
``kde_logsum_finish_*`` merges the per-split partials in split order (deterministic). Compact
kernels whose sum is tiny but not 0 are recomputed in float64 log space by ``kde_logsum_slow`` on
those queries only, as the CPU does. The floors of the kernels are in kernels/kde.cu.

``kde_loo_logsum_grid`` is the GPU twin of ``_kde_cv_cpu.kde_loo_logsum_grid`` (leave-one-out sums
for likelihood cross-validation): the same kernels, one launch per candidate factor, each point
left out of its own sum.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend._cuda import get_function, multiprocessor_count, require_cupy
from ._kernels import COMPACT_KERNELS, KERNEL_CODES, KERNELS

SOURCE = "kde.cu"
BLOCK = 128  # kde::BLOCK
TILE = 128  # kde::TILE (split lengths are multiples of it; also a multiple of kde::TILE_G)
SLOW_BLOCK = 128  # kde::SLOW_BLOCK
FINISH_BLOCK = 256
BLOCKS_PER_SM = 8
MAX_SPLITS = 65535  # gridDim.y limit
MAX_SLOW_BLOCKS = 65535 * 16  # the slow kernel's blocks stride over its rows beyond this
# Compile-time dimensions; d is padded up to the next one (zeros add exactly 0); 0 = any d.
SPECIALISED_D = (1, 2, 3, 4, 6, 8, 12, 16)
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_TINY = {np.dtype(np.float64): 1e-280, np.dtype(np.float32): 1e-30}
_LOG2E = 1.0 / math.log(2.0)


def _compiled_d(d: int) -> int:
    for D in SPECIALISED_D:
        if d <= D:
            return D
    return 0


def main_name(kernel: str, ctype: str, D: int, adaptive: bool) -> str:
    return f"kde_logsum_{kernel}<{ctype}, {D}, {'true' if adaptive else 'false'}>"


def slow_name(kernel: str, ctype: str) -> str:
    return f"kde_logsum_slow<{ctype}, {KERNEL_CODES[kernel]}>"


FINISH_NAMES = ("kde_logsum_finish_log", "kde_logsum_finish_sum")


def module_group(kernel: str, ctype: str) -> tuple[str, ...]:
    """The name expressions compiled together for one kernel profile and dtype (one module)."""
    names = [main_name(kernel, ctype, D, a) for D in SPECIALISED_D + (0,) for a in (False, True)]
    if kernel in COMPACT_KERNELS:
        names.append(slow_name(kernel, ctype))
    return tuple(names) + FINISH_NAMES


# Every instantiation this launcher can ask for (checked by tests/kde/test_kde_cuda_compile.py).
KDE_NAME_EXPRESSIONS = tuple(
    dict.fromkeys(name for kernel in KERNELS for ctype in ("float", "double") for name in module_group(kernel, ctype))
)


def coordinate_scale(kernel: str) -> float:
    """Factor folded into the coordinates so that the inner loop needs a bare ex2 (see kde.cu)."""
    if kernel == "gaussian":
        return math.sqrt(0.5 * _LOG2E)
    if kernel == "exponential":
        return _LOG2E
    return 1.0


def launch_geometry(m: int, n: int, n_sm: int) -> tuple[int, int, int]:
    """(query blocks, splits, split length): enough blocks to fill ``n_sm`` multiprocessors."""
    query_blocks = -(-m // BLOCK)
    n_tiles = -(-n // TILE)
    splits = max(1, min(-(-BLOCKS_PER_SM * n_sm // query_blocks), n_tiles, MAX_SPLITS))
    split_len = -(-n_tiles // splits) * TILE
    splits = -(-n // split_len)
    return query_blocks, splits, split_len


def kde_logsum(queries, train, log_weights=None, kernel="gaussian", inv_scales=None, *, train_t=None):
    """log Σ_j w_j k(‖q_i − x_j‖ s_j) for whitened CuPy ``queries`` (m, d) and ``train`` (n, d).

    ``log_weights`` (n,) are log w_j (any scale; None for equal weights of 1); ``inv_scales`` (n,)
    optional per-point inverse bandwidth factors. ``train_t`` may pass a prepared contiguous (d, n)
    transpose of ``train``. Returns a CuPy float64 array (m,) on the current device. Both arrays
    must have the same floating dtype (float32 or float64).
    """
    cp = require_cupy("the CUDA KDE engine")
    queries = cp.ascontiguousarray(queries)
    dtype = queries.dtype
    if train_t is None:
        train_t = cp.ascontiguousarray(cp.asarray(train).T, dtype=dtype)
    else:
        train_t = cp.ascontiguousarray(train_t)
    if train_t.ndim != 2:
        raise ValueError(f"train must be 2-D; got {train_t.ndim} dimensions")
    d, n = train_t.shape
    if queries.ndim != 2 or queries.shape[1] != d:
        raise ValueError(f"queries must have shape (m, {d}); got {queries.shape}")
    if train_t.dtype != dtype or dtype not in _CTYPES:
        raise TypeError(f"queries and train must both be float32 or both float64; got {dtype} and {train_t.dtype}")
    if n == 0:
        raise ValueError("the training set is empty")
    if kernel not in KERNEL_CODES:
        raise ValueError(f"kernel must be one of {KERNELS}; got {kernel!r}")
    log_w = _log_weights(cp, log_weights, n)
    if queries.shape[0] == 0:
        return cp.empty(0, dtype=cp.float64)
    return _launch(cp, queries, train_t, log_w, kernel, inv_scales, exclude_self=False)


def _log_weights(cp, log_weights, n):
    if log_weights is None:
        return cp.zeros(n, dtype=cp.float64)
    log_w = cp.ascontiguousarray(log_weights, dtype=cp.float64)
    if log_w.shape != (n,):
        raise ValueError(f"log_weights must have shape ({n},); got {log_w.shape}")
    return log_w


def _launch(cp, queries, train_t, log_w, kernel, inv_scales, exclude_self):
    """The kernels for validated, contiguous inputs (m ≥ 1, n ≥ 1); float64 (m,) out."""
    dtype = queries.dtype
    ctype = _CTYPES[dtype]
    d, n = train_t.shape
    m = queries.shape[0]
    out = cp.empty(m, dtype=cp.float64)
    shift = float(cp.max(log_w))
    compact = kernel in COMPACT_KERNELS
    if compact:
        param = cp.exp(log_w - shift).astype(dtype)
        tiny = _TINY[dtype] * max(float(cp.sum(param, dtype=cp.float64)), 1.0)
        # The GPU flushes denormals to zero (CuPy compiles with -ftz=true): a weight below the
        # smallest normal number is lost, so a zero sum is then not proof of an empty support.
        smallest_normal = float(np.finfo(dtype).tiny)
        zero_is_exact = not bool(cp.any((param < smallest_normal) & cp.isfinite(log_w)))
    else:
        param = ((shift - log_w) * _LOG2E).astype(dtype)  # −log2 w_j ≥ 0 (+inf for zero weights)
    adaptive = inv_scales is not None
    if adaptive:
        inv_scale2 = cp.ascontiguousarray(cp.asarray(inv_scales, dtype=cp.float64) ** 2).astype(dtype)
        if inv_scale2.shape != (n,):
            raise ValueError(f"inv_scales must have shape ({n},); got {inv_scale2.shape}")
    else:
        inv_scale2 = cp.ones(1, dtype=dtype)

    query_blocks, splits, split_len = launch_geometry(m, n, multiprocessor_count())
    part_m = cp.empty((splits, m), dtype=cp.float64)
    part_s = cp.empty((splits, m), dtype=cp.float64)
    group = module_group(kernel, ctype)
    main = get_function(SOURCE, main_name(kernel, ctype, _compiled_d(d), adaptive), group)
    scalar = dtype.type
    main(
        (query_blocks, splits),
        (BLOCK,),
        (queries, train_t, param, inv_scale2, np.int64(m), np.int64(n), np.int32(d), np.int64(split_len),
         scalar(coordinate_scale(kernel)), np.int32(exclude_self), part_m, part_s),
    )
    finish_grid = (-(-m // FINISH_BLOCK),)
    if compact:
        finish = get_function(SOURCE, "kde_logsum_finish_sum", group)
        finish(finish_grid, (FINISH_BLOCK,), (part_s, np.int64(m), np.int32(splits), np.float64(shift),
                                              np.float64(tiny), np.int32(zero_is_exact), out))
        rows = cp.flatnonzero(cp.isnan(out)).astype(cp.int64)
        if rows.size:
            slow = get_function(SOURCE, slow_name(kernel, ctype), group)
            slow((min(int(rows.size), MAX_SLOW_BLOCKS),), (SLOW_BLOCK,),
                 (queries, train_t, log_w, inv_scale2, np.int32(adaptive), np.int32(exclude_self), np.int64(n),
                  np.int32(d), rows, np.int64(rows.size), out))
    else:
        finish = get_function(SOURCE, "kde_logsum_finish_log", group)
        finish(finish_grid, (FINISH_BLOCK,), (part_m, part_s, np.int64(m), np.int32(splits), np.float64(shift), out))
    return out


def kde_loo_logsum_grid(train, log_weights=None, kernel="gaussian", inv_factors=(1.0,)):
    """L[i, c] = log Σ_{j≠i} w_j k(‖x_i − x_j‖ · inv_factors[c]) for whitened CuPy ``train`` (n, d).

    The GPU twin of ``_kde_cv_cpu.kde_loo_logsum_grid`` (same arguments and contract): ``log_weights``
    (n,) are log w_j (−inf allowed for zero weights; None for equal weights), ``inv_factors`` (g,) the
    inverse candidate factors. Returns a CuPy float64 (n, g) array; an entry is −inf only when every
    other point contributes exactly 0. float64 throughout, as on the CPU. One launch of the
    ``kde_logsum`` kernels per candidate, with point i left out of row i's sum (``exclude_self``).
    """
    cp = require_cupy("the CUDA KDE engine")
    train = cp.ascontiguousarray(train, dtype=cp.float64)
    if train.ndim != 2:
        raise ValueError(f"train must be 2-D (n, d); got shape {train.shape}")
    if kernel not in KERNEL_CODES:
        raise ValueError(f"kernel must be one of {KERNELS}; got {kernel!r}")
    n = train.shape[0]
    factors = np.asarray(inv_factors.get() if hasattr(inv_factors, "get") else inv_factors, dtype=np.float64)
    factors = factors.reshape(-1)
    log_w = _log_weights(cp, log_weights, n)
    out = cp.empty((n, factors.shape[0]), dtype=cp.float64)
    if n == 0 or factors.shape[0] == 0:
        return out
    if float(cp.max(log_w)) == -math.inf:
        out.fill(-math.inf)
        return out
    for c, f in enumerate(factors):
        scaled = train * f
        out[:, c] = _launch(cp, scaled, cp.ascontiguousarray(scaled.T), log_w, kernel, None, exclude_self=True)
    return out
