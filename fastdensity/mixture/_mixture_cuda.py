"""Gaussian mixture ops on a CUDA GPU (CuPy): the fused E-step and the scoring passes.

Same signatures and results as :mod:`fastdensity.mixture._mixture_cpu` (``gmm_estep``,
``gmm_log_prob``, ``gmm_log_prob_norm``); the kernels are in ``kernels/mixture.cu`` (its header
comment has the design and the floor). float32 data run the float kernels (log-densities and the
per-tile sums in float32, the sums across tiles and blocks in float64); anything else runs in
float64. Every result is float64, as on the CPU.

Determinism: each block adds its tiles' sums into its own partial buffer and
``gmm_reduce_partials`` sums the buffers in block order, so the statistics do not depend on
scheduling (no atomics); they depend only on the shapes, the dtype and the launch plan
(``plan``), which is a function of the shapes and the device's shared-memory limit.

``kmeans_plusplus`` stays CPU-only (a few passes at initialisation).

This module imports without CuPy (the compile check reads ``NAME_EXPRESSIONS``); CuPy is imported
when a function runs. Status: compiled with nvcc and NVRTC (sm_90), run end to end with this
launcher in the host emulation of tests/cuda_host_emulation.py (also under ThreadSanitizer), where it
matches the CPU engine; NOT yet run on a GPU (no timings, no compute-sanitizer).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

SOURCE = "mixture.cu"
FAMILIES = {"full": 0, "tied": 1, "diag": 2, "spherical": 2}  # kernels/mixture.cu enum Family
MODE_LOG_PROB, MODE_NORM, MODE_ESTEP = 0, 1, 2  # enum Mode
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def pass_name(dtype, family: int, mode: int) -> str:
    """The name expression of ``gmm_pass`` for a compute dtype, family and mode."""
    return f"gmm_pass<{_CTYPES[np.dtype(dtype)]}, {family}, {mode}>"


REDUCE_NAME = "gmm_reduce_partials"
NAME_EXPRESSIONS = tuple(
    pass_name(t, f, m) for t in _CTYPES for f in sorted(set(FAMILIES.values())) for m in range(3)
) + (REDUCE_NAME,)

ROWS_PER_TILE = (256, 128, 64, 32)  # BR candidates, largest first
MAX_BLOCKS = 1024  # E-step blocks (each with its own partial buffer)
REDUCE_THREADS = 256
LOG_2PI = math.log(2.0 * math.pi)
_STATIC_SMEM = 48 * 1024


class Plan(NamedTuple):
    """Launch geometry of one pass (computed here, never by an estimator)."""

    rows: int  # BR: threads per block and rows per tile
    tiles_per_block: int
    blocks: int
    smem: int  # dynamic shared memory, bytes
    n_entries: int  # statistic entries E


def smem_bytes(itemsize: int, rows: int, d: int, K: int, family: int) -> int:
    """Dynamic shared memory of ``gmm_pass`` (the layout in kernels/mixture.cu)."""
    scratch = 0 if family == FAMILIES["diag"] else d
    return itemsize * (rows + 1) * (d + scratch + K + 1)


def n_entries(d: int, K: int, family: int) -> int:
    """Number of statistic entries: R (K), Sx (K d), Sxx (full K P, tied P, diag K d)."""
    P = d * (d + 1) // 2
    return K + K * d + (K * P if family == 0 else P if family == 1 else K * d)


def plan(n: int, d: int, K: int, family: int, mode: int, itemsize: int, smem_optin: int) -> Plan:
    """Rows per tile: the largest candidate whose tile fits in 48 KB of shared memory, else in the
    device's opt-in limit ``smem_optin``; the E-step spreads the tiles over at most ``MAX_BLOCKS``
    blocks, the scoring modes give each tile its own block. ValueError when nothing fits."""
    rows = next((r for r in ROWS_PER_TILE if smem_bytes(itemsize, r, d, K, family) <= _STATIC_SMEM), None)
    if rows is None:
        rows = next((r for r in ROWS_PER_TILE if smem_bytes(itemsize, r, d, K, family) <= smem_optin), None)
    if rows is None:
        raise ValueError(
            f"a mixture with {K} components in {d} dimensions needs "
            f"{smem_bytes(itemsize, ROWS_PER_TILE[-1], d, K, family)} bytes of shared memory per block on "
            f"the GPU; this device allows {smem_optin}. Use backend='cpu'"
        )
    n_tiles = max(1, -(-n // rows))
    per_block = 1 if mode != MODE_ESTEP else -(-n_tiles // MAX_BLOCKS)
    blocks = -(-n_tiles // per_block)
    return Plan(rows, per_block, blocks, smem_bytes(itemsize, rows, d, K, family), n_entries(d, K, family))


def unpack_stats(flat, d: int, K: int, cov_type: str, xp=np):
    """(R (K,), Sx (K, d), Sxx) from the flat statistics (E,), Sxx as the CPU engine returns it:
    symmetric (K, d, d) for full, (d, d) for tied, (K, d) for diag and spherical."""
    nk = flat[:K]
    sx = flat[K:K + K * d].reshape(K, d)
    rest = flat[K + K * d:]
    if cov_type in ("diag", "spherical"):
        return nk, sx, rest.reshape(K, d)
    ti, tj = (xp.asarray(a) for a in np.tril_indices(d))
    groups = K if cov_type == "full" else 1
    vals = rest.reshape(groups, len(ti))
    sxx = xp.zeros((groups, d, d), dtype=flat.dtype)
    sxx[:, tj, ti] = vals  # upper first, then the lower (and diagonal) entries
    sxx[:, ti, tj] = vals
    return nk, sx, sxx if cov_type == "full" else sxx[0]


def _prepare(cp, X, means, prec_chol, log_weights, cov_type, shift):
    """Device arrays in the compute dtype: (family, dtype, X, means (2, K, d) as hi and lo, U,
    shift (2, d) as hi and lo, muU, cst (float64))."""
    if cov_type not in FAMILIES:
        raise ValueError(f"unknown covariance type {cov_type!r}")
    X = cp.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D; got shape {X.shape}")
    dtype = np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)
    X = cp.ascontiguousarray(X, dtype=dtype)
    # The parameters are small: prepared on the host in float64 (NumPy, no kernel launches), then
    # uploaded once each. CuPy parameters are brought to the host first.
    def host(a):
        return np.asarray(cp.asnumpy(a) if isinstance(a, cp.ndarray) else a, dtype=np.float64)

    means = host(means)
    K, d = means.shape
    prec = host(prec_chol)
    if cov_type == "full":
        logdet = np.sum(np.log(np.diagonal(prec, axis1=1, axis2=2)), axis=1)
        U = prec
    elif cov_type == "tied":
        logdet = np.full(K, np.sum(np.log(np.diag(prec))))
        U = prec
    elif cov_type == "diag":
        logdet = np.sum(np.log(prec), axis=1)
        U = prec
    else:
        logdet = d * np.log(prec)
        U = np.repeat(prec[:, None], d, axis=1)
    cst = logdet - 0.5 * d * LOG_2PI
    if log_weights is not None:
        cst = cst + host(log_weights)
    shift = np.mean(means, axis=0) if shift is None else host(shift)
    muU = (means - shift) @ prec if cov_type == "tied" else np.zeros((1, d))

    def dev(a):
        return cp.asarray(np.ascontiguousarray(a, dtype=dtype))

    def hi_lo(a):  # a = hi + lo in the compute dtype: (2, ...) (see `centred` in mixture.cu)
        hi = a.astype(dtype)
        return dev(np.stack([hi, (a - hi.astype(np.float64)).astype(dtype)]))

    return (FAMILIES[cov_type], dtype, X, hi_lo(means), dev(U), hi_lo(shift), dev(muU),
            cp.asarray(np.ascontiguousarray(cst, dtype=np.float64)))


def _run(X, sample_weight, means, prec_chol, log_weights, cov_type, shift, mode):
    from .._backend._cuda import get_function, require_cupy

    cp = require_cupy("Gaussian mixtures on the GPU")
    family, dtype, X, mu, U, s, muU, cst = _prepare(cp, X, means, prec_chol, log_weights, cov_type, shift)
    n, d = X.shape
    K = mu.shape[1]
    if n >= 2**31:
        raise ValueError(f"the GPU engine takes fewer than 2**31 rows; got {n}")
    geo = plan(n, d, K, family, mode, dtype.itemsize,
               cp.cuda.Device().attributes["MaxSharedMemoryPerBlockOptin"])
    # One small module per (dtype, family, mode): a first call compiles two kernels, not nineteen.
    group = (pass_name(dtype, family, mode), REDUCE_NAME)
    has_w = sample_weight is not None
    w = cp.ascontiguousarray(cp.asarray(sample_weight, dtype=dtype)) if has_w else cp.ones(1, dtype=dtype)
    lpn = cp.empty(n if mode != MODE_LOG_PROB else 1)
    lp_out = cp.empty((n, K) if mode == MODE_LOG_PROB else 1)
    partial = cp.zeros((geo.blocks, geo.n_entries) if mode == MODE_ESTEP else 1)
    if n:
        kern = get_function(SOURCE, group[0], group)
        if geo.smem > _STATIC_SMEM:
            kern.max_dynamic_shared_size_bytes = geo.smem
        kern((geo.blocks,), (geo.rows,),
             (X, w, np.int32(has_w), np.int32(n), np.int32(d), np.int32(K), mu, U, s, muU, cst,
              np.int32(geo.tiles_per_block), lpn, lp_out, partial),
             shared_mem=geo.smem)
    if mode == MODE_LOG_PROB:
        return lp_out
    if mode == MODE_NORM:
        return lpn
    flat = cp.empty(geo.n_entries)
    reduce = get_function(SOURCE, REDUCE_NAME, group)
    reduce((-(-geo.n_entries // REDUCE_THREADS),), (REDUCE_THREADS,),
           (partial, np.int32(partial.shape[0]), np.int32(geo.n_entries), flat))
    return (lpn,) + unpack_stats(flat, d, K, cov_type, xp=cp)


def gmm_log_prob(X, means, prec_chol, cov_type, log_weights=None, shift=None):
    """log N(x_i | μ_c, (U_c U_cᵀ)⁻¹) (+ log_weights[c] when given) on the GPU: float64 (n, k).

    Arguments as :func:`fastdensity.mixture._mixture_cpu.gmm_log_prob` (``prec_chol`` in
    scikit-learn's layout for ``cov_type``; ``shift`` for tied, default the mean of the means);
    CuPy arrays (or anything ``cupy.asarray`` takes) in, CuPy arrays out.
    """
    return _run(X, None, means, prec_chol, log_weights, cov_type, shift, MODE_LOG_PROB)


def gmm_log_prob_norm(X, means, prec_chol, log_weights, cov_type, shift=None):
    """log Σ_c π_c N(x_i | μ_c, Σ_c) for each row on the GPU: float64 (n,), without an (n, k) array."""
    return _run(X, None, means, prec_chol, log_weights, cov_type, shift, MODE_NORM)


def gmm_estep(X, sample_weight, means, prec_chol, log_weights, cov_type, shift=None):
    """The fused E-step on the GPU: (log_prob_norm (n,), R (k,), Sx (k, d), Sxx), all float64.

    As :func:`fastdensity.mixture._mixture_cpu.gmm_estep`: weighted sufficient statistics about
    the current ``means``; Sxx is (k, d, d) for full (symmetric), (d, d) about ``shift`` for tied
    and (k, d) for diag and spherical. Deterministic (fixed-order reduction, no atomics).
    """
    return _run(X, sample_weight, means, prec_chol, log_weights, cov_type, shift, MODE_ESTEP)


# ------------------------------------------------------------ initialisation on the device
# GaussianMixture.fit on GPU data: the initial responsibilities are formed on the device (CuPy
# array operations; each is a pass over the data), only (k, d)-sized results come to the host.
def _weights(cp, X, sample_weight):
    return cp.ones(X.shape[0]) if sample_weight is None else cp.asarray(sample_weight, dtype=np.float64)


def stats_from_resp(X, sample_weight, resp, covariance_type, shift):
    """As ``_gaussian_params.stats_from_resp`` for CuPy ``X`` (n, d), ``sample_weight`` (n,) or
    None and ``resp`` (n, k): (R, Sx, Sxx, centres) as host float64 arrays, each component's
    statistics about its own weighted mean (``shift``, host (d,), for empty components and tied)."""
    from .._backend._cuda import require_cupy
    from ._gaussian_params import stats_about_centres

    cp = require_cupy("Gaussian mixtures on the GPU")
    weights = None if sample_weight is None else cp.asarray(sample_weight, dtype=np.float64)
    out = stats_about_centres(X.astype(np.float64), weights, resp, covariance_type,
                              cp.asarray(np.asarray(shift, dtype=np.float64)), xp=cp)
    return tuple(cp.asnumpy(a) for a in out)


def kmeans_plusplus(X, n_clusters, sample_weight, random_state):
    """k-means++ seeding of CuPy ``X`` drawing from ``random_state`` as the CPU engine
    (``_kmeans_plusplus_cpu.kmeans_plusplus``) does, so that the same seed picks the same rows (barring
    rounding ties in the cumulative sums). Returns (centres (k, d) CuPy float64, indices (k,) host)."""
    from .._backend._cuda import require_cupy

    cp = require_cupy("Gaussian mixtures on the GPU")
    X = X.astype(np.float64)
    n = X.shape[0]
    w = _weights(cp, X, sample_weight)
    n_local_trials = 2 + int(np.log(n_clusters))
    indices = np.full(n_clusters, -1, dtype=np.int64)
    # random_state.choice(n, p=w / w.sum()) as NumPy computes it: one uniform draw on its CDF
    cdf = cp.cumsum(w / w.sum())
    centre_id = int(cp.searchsorted(cdf / cdf[-1], cp.asarray(random_state.random_sample()), side="right"))
    indices[0] = centre_id

    def distances(cand):  # (t, n) squared distances to the candidates, min with `closest`
        return cp.stack([cp.sum((X - X[i]) ** 2, axis=1) for i in cand])

    closest = distances([centre_id])[0]
    current_pot = float(cp.sum(w * closest))
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * current_pot
        cand = cp.searchsorted(cp.cumsum(w * closest), cp.asarray(rand_vals))
        cand = np.minimum(cp.asnumpy(cand), n - 1)
        dist = cp.minimum(distances(cand), closest[None, :])
        pot = cp.asnumpy(dist @ w)
        best = int(np.argmin(pot))
        current_pot = float(pot[best])
        closest = dist[best]
        indices[c] = cand[best]
    return X[cp.asarray(indices)], indices


def kmeans_labels(X, n_clusters, sample_weight, random_state, max_iter=300, tol=1e-4, chunk=1 << 20):
    """Lloyd's k-means on the device from k-means++ seeds: labels (n,) CuPy int64.

    For ``init_params="kmeans"`` on GPU data: the algorithm and stopping rule (centre shift below
    ``tol`` times the mean per-feature variance) of scikit-learn's KMeans and of the CPU's
    ``_kmeans_cpu.kmeans``, but not the same code (distances by ‖x‖² − 2 x·c + ‖c‖² here, an
    empty cluster keeps its centre), so a seed gives a similar start, not always the same."""
    from .._backend._cuda import require_cupy

    cp = require_cupy("Gaussian mixtures on the GPU")
    X = X.astype(np.float64)
    n = X.shape[0]
    w = _weights(cp, X, sample_weight)
    centres = kmeans_plusplus(X, n_clusters, sample_weight, random_state)[0]
    threshold = tol * float(cp.mean(cp.var(X, axis=0)))
    xx = cp.sum(X * X, axis=1)

    def assign(C):
        labels = cp.empty(n, dtype=np.int64)
        cc = cp.sum(C * C, axis=1)
        for r0 in range(0, n, chunk):  # (chunk, k) distances at a time
            d2 = xx[r0:r0 + chunk, None] - 2.0 * (X[r0:r0 + chunk] @ C.T) + cc[None, :]
            labels[r0:r0 + chunk] = cp.argmin(d2, axis=1)
        return labels

    for _ in range(max_iter):
        labels = assign(centres)
        new = centres.copy()
        for c in range(n_clusters):
            wc = w * (labels == c)
            total = float(wc.sum())
            if total > 0:  # an empty cluster keeps its centre
                new[c] = (wc @ X) / total
        shift = float(cp.sum((new - centres) ** 2))
        centres = new
        if shift <= threshold:
            break
    return assign(centres)
