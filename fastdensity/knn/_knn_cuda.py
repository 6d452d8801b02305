"""Brute-force k nearest neighbours on a CUDA GPU (CuPy): the ``knn_distances`` op.

Same contract as :func:`fastdensity.knn._knn_cpu.knn_distances`: ``(distances (m, k), indices (m,
k) int64)``, distances in the queries' dtype, sorted ascending, ties by the smaller index. The
kernels are in ``kernels/knn.cu`` (its header comment has the design and the floors):

1. ``knn_topk_tiles<T>`` screens every (query, training point) pair with the matrix form
   ‖x‖² − 2 q·x on data centred on the training mean and scaled by a power of two, in T (float32
   when both inputs are float32, else float64), and keeps each query's k best indices per split
   of the training set.
2. ``knn_merge_exact<T, OutT>`` recomputes the exact squared distance of every kept candidate in
   float64 (the CPU's operations, in the CPU's order), sorts by (distance, index) and writes the
   k best; a neighbour found by both engines has a bit-identical distance.

Accuracy contract: the distances are exact for the returned indices; the set may differ from
the CPU's only among points whose squared distances are within the screen's rounding error of
the k-th one, about (d + 4)·u·(‖q‖ + R)² in the scaled units (u = 2⁻²⁴ in float32, 2⁻⁵³ in
float64; R the largest scaled training norm, ≤ √d). k is at most ``MAX_K`` (the sorted lists live
in shared memory); a larger k raises and names ``backend="cpu"``.

This module imports without CuPy (the compile check reads ``NAME_EXPRESSIONS``); CuPy is imported
when a function runs. Status: compiled with nvcc and NVRTC (sm_90), run end to end with this
launcher in the host emulation of tests/cuda_host_emulation.py (also under ThreadSanitizer), where it
matches the CPU engine; NOT yet run on a GPU (no timings, no compute-sanitizer).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._knn_cpu import check_k

SOURCE = "knn.cu"
TOPK_NAMES = {np.dtype(np.float32): "knn_topk_tiles<float>", np.dtype(np.float64): "knn_topk_tiles<double>"}
# (compute dtype, output dtype) -> merge kernel
MERGE_NAMES = {
    (np.dtype(np.float32), np.dtype(np.float32)): "knn_merge_exact<float, float>",
    (np.dtype(np.float64), np.dtype(np.float64)): "knn_merge_exact<double, double>",
    (np.dtype(np.float64), np.dtype(np.float32)): "knn_merge_exact<double, float>",
}
NAME_EXPRESSIONS = tuple(TOPK_NAMES.values()) + tuple(MERGE_NAMES.values())

# Mirrors of the constants of kernels/knn.cu (enum Geometry)
QPW = 4  # queries per warp
TILE = 128  # training points per tile
DC = 32  # dimensions per shared-memory chunk
MAX_K = 1024  # largest k: the per-query sorted list (next_pow2(k) pairs, doubled) is in shared memory
MAX_MERGE = 4096  # candidates per query in the exact merge (splits × k)
MERGE_THREADS = 128
MAX_WARPS = 8
BLOCKS_PER_SM = 4  # grid target when splitting the training set for few queries
_STATIC_SMEM = 48 * 1024  # above this a kernel needs the opt-in attribute


class Plan(NamedTuple):
    """Launch geometry of one ``knn_distances`` call (computed here, never by an estimator)."""

    warps: int  # warps per block of the screen kernel (each owns QPW queries)
    k2: int  # list length: next power of two ≥ max(k, 32)
    grid_x: int  # query blocks
    n_splits: int  # training splits (grid.y)
    split_len: int  # training points per split, a multiple of TILE
    smem_topk: int  # dynamic shared memory of the screen kernel, bytes
    p2: int  # candidates per query in the merge, padded to a power of two
    smem_merge: int  # dynamic shared memory of the merge kernel, bytes


def _pow2_at_least(x: int) -> int:
    return 1 << max(0, int(x) - 1).bit_length()


def topk_smem_bytes(itemsize: int, warps: int, k2: int) -> int:
    """Dynamic shared memory of ``knn_topk_tiles`` (the layout in kernels/knn.cu)."""
    lists = warps * QPW * 2 * k2
    return itemsize * (DC * (TILE + 1) + warps * DC * QPW + lists) + 4 * lists


def plan(m: int, n: int, k: int, itemsize: int, sm_count: int, smem_optin: int) -> Plan:
    """Launch geometry for m queries, n training points, k neighbours, T of ``itemsize`` bytes on
    a device with ``sm_count`` multiprocessors and ``smem_optin`` bytes of shared memory per block.
    Raises ValueError when k is above ``MAX_K`` or the lists do not fit."""
    if k > MAX_K:
        raise ValueError(
            f"k must be at most {MAX_K} on the GPU (backend='cuda'); got {k}. "
            "Use backend='cpu' for larger k"
        )
    k2 = _pow2_at_least(max(k, 32))
    warps_needed = _pow2_at_least(-(-m // QPW))
    warps = 0
    for w in (8, 4, 2, 1):
        if w <= max(1, min(MAX_WARPS, warps_needed)) and topk_smem_bytes(itemsize, w, k2) <= smem_optin:
            warps = w
            break
    if warps == 0:
        raise ValueError(
            f"k = {k} needs {topk_smem_bytes(itemsize, 1, k2)} bytes of shared memory per block; this GPU "
            f"allows {smem_optin}. Use a smaller k or backend='cpu'"
        )
    grid_x = -(-m // (warps * QPW))
    n_tiles = -(-n // TILE)
    want = -(-BLOCKS_PER_SM * sm_count // grid_x)
    n_splits = max(1, min(want, n_tiles // 4, MAX_MERGE // k))
    split_len = -(-n_tiles // n_splits) * TILE
    n_splits = -(-n // split_len)
    p2 = _pow2_at_least(n_splits * k)
    return Plan(warps, k2, grid_x, n_splits, split_len, topk_smem_bytes(itemsize, warps, k2), p2, 12 * p2)


def _as_float(cp, a, name):
    a = cp.asarray(a)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D; got shape {a.shape}")
    return cp.ascontiguousarray(a)


def _scaled(cp, a, center, scale, dtype):
    return cp.ascontiguousarray(((a.astype(np.float64) - center) * scale).astype(dtype))


def _kernel(name, group, smem):
    from .._backend._cuda import get_function

    kern = get_function(SOURCE, name, group)
    if smem > _STATIC_SMEM:
        kern.max_dynamic_shared_size_bytes = smem
    return kern


def knn_distances(queries, train, k, exclude_self=False):
    """The k nearest training points of each query on the GPU: ``(distances (m, k), indices (m, k))``.

    ``queries`` (m, d) and ``train`` (n, d): CuPy arrays (or anything ``cupy.asarray`` takes),
    finite, float32 or float64 (anything else is converted to float64); the results are CuPy
    arrays on the current device, distances in the queries' dtype (sorted ascending, ties by the
    smaller index), indices int64. ``exclude_self=True`` (the queries are the training points)
    leaves each point out of its own neighbours. Needs 1 ≤ k ≤ n (k ≤ n − 1 with
    ``exclude_self``) and k ≤ ``MAX_K``. See the module docstring for the accuracy contract.
    """
    from .._backend._cuda import require_cupy

    cp = require_cupy("knn_distances on the GPU")
    train = _as_float(cp, train, "train")
    queries = _as_float(cp, queries, "queries")
    n, d = train.shape
    if queries.shape[1] != d:
        raise ValueError(f"queries must have shape (m, {d}); got {queries.shape}")
    m = queries.shape[0]
    k = check_k(k, n, m, exclude_self)
    if n >= 2**31 or m >= 2**31:
        raise ValueError(f"the GPU engine takes fewer than 2**31 points and queries; got n = {n}, m = {m}")
    out_dtype = queries.dtype
    if m == 0:
        return cp.empty((0, k), dtype=out_dtype), cp.empty((0, k), dtype=np.int64)
    both32 = train.dtype == np.float32 and queries.dtype == np.float32
    dtype = np.dtype(np.float32 if both32 else np.float64)

    dev = cp.cuda.Device()
    geo = plan(m, n, k, dtype.itemsize, dev.attributes["MultiProcessorCount"],
               dev.attributes["MaxSharedMemoryPerBlockOptin"])

    # Centre on the training mean and scale by a power of two (|coordinates| ≤ 1) so that the
    # screen's matrix form neither cancels badly nor over/underflows; the exact merge reads the
    # original values.
    center = train.mean(axis=0, dtype=np.float64)
    spread = max(float(cp.abs(train.astype(np.float64) - center).max()),
                 float(cp.abs(queries.astype(np.float64) - center).max()))
    scale = 1.0 if spread == 0.0 or not np.isfinite(spread) else 2.0 ** -np.frexp(spread)[1]
    xs = _scaled(cp, train, center, scale, dtype)
    qs = _scaled(cp, queries, center, scale, dtype)
    xs64 = xs.astype(np.float64)
    xx = cp.ascontiguousarray(cp.sum(xs64 * xs64, axis=1).astype(dtype))
    del xs64

    # One module per (compute dtype, output dtype): a first call compiles two kernels, not five.
    group = (TOPK_NAMES[dtype], MERGE_NAMES[(dtype, np.dtype(out_dtype))])
    part = cp.empty((geo.n_splits, m, k), dtype=np.int32)
    topk = _kernel(group[0], group, geo.smem_topk)
    topk((geo.grid_x, geo.n_splits), (32 * geo.warps,),
         (qs, xs, xx, np.int32(m), np.int32(n), np.int32(d), np.int32(k), np.int32(geo.k2),
          np.int32(geo.split_len), np.int32(bool(exclude_self)), part),
         shared_mem=geo.smem_topk)
    del xs, qs, xx

    out_d = cp.empty((m, k), dtype=out_dtype)
    out_i = cp.empty((m, k), dtype=np.int64)
    merge = _kernel(group[1], group, geo.smem_merge)
    queries_t = cp.ascontiguousarray(queries.astype(dtype, copy=False))
    train_t = cp.ascontiguousarray(train.astype(dtype, copy=False))
    merge((m,), (MERGE_THREADS,),
          (queries_t, train_t, part, np.int32(m), np.int32(d), np.int32(k), np.int32(geo.n_splits),
           np.int32(geo.p2), out_d, out_i),
         shared_mem=geo.smem_merge)
    return out_d, out_i
