"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020) of
generated samples, in O(N) memory.

With r(x) the distance from x to its k-th nearest neighbour in its own set (``nearest_k`` = k;
as in the ``prdc`` package, the point itself counts as its first neighbour, so r(x) is the
k-th smallest distance to the *other* points), B(x) the open ball {z : ‖z − x‖ < r(x)}, real
points x_1..x_N and fake points y_1..y_M:

* precision = (1/M) Σ_j [y_j ∈ ∪_i B(x_i)],   recall = (1/N) Σ_i [x_i ∈ ∪_j B(y_j)],
* density = (1/(kM)) Σ_j Σ_i [y_j ∈ B(x_i)],  coverage = (1/N) Σ_i [min_j ‖x_i − y_j‖ < r(x_i)].

The numbers equal those of ``prdc.compute_prdc`` (which forms three N × M distance matrices)
but no such matrix is ever allocated: the radii and the coverage come from fastdensity's exact
kNN engine, and ball membership is counted over tiles of ``batch_size`` × 512 pairs, blocks
of queries handed to the threads dynamically. Each tile is screened with the Gram form
‖q‖² + ‖c‖² − 2 q·c (one float64 BLAS product on centred, power-of-two scaled copies) and a
rigorous bound on its rounding error; pairs the screen cannot decide get their exact distance,
computed with the kNN engine's own operations (``exact_sq_dist``), so a point at exactly a
radius is decided as the radii were.

Distances are exact float64 (inputs are converted to float64), whereas ``prdc`` uses
scikit-learn's Gram-form distances (rounded, float32 for float32 input): the results are
identical except for pairs within rounding of a ball's boundary, which random features avoid
and exactly representable data (e.g. integers) decide identically.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from .._backend._convert import to_host_numpy
from .._backend._dispatch import get_op, resolve_backend
from .._backend._namespace import common_kind
from .._backend._threads import resolve_n_jobs, threads
from .._backend._validation import Integer, Options, check_parameter
from ..knn._knn import _auto_algorithm
from ..knn._knn_cpu import knn_distances, knn_index
from ..knn._sched import next_task
from ..knn._topk import exact_sq_dist
from ._dask_features import any_dask
from ._fid import _xp, check_features

__all__ = ["prdc"]

_U = 2.0**-53  # unit roundoff of float64
CENTRE_TILE = 512  # centres per gemm tile of the ball-membership pass
_DEVICE_TILE = 8192  # centres per tile on a GPU (a tile is batch_size × this, float64)
# Spreads (max |x − centre|) the screen handles; outside, every pair gets its exact distance.
_SPREAD_MIN = 2.0**-300
_SPREAD_MAX = 2.0**300


def _margin_coef(d):
    """Relative bound on |screen − exact squared distance| in units of ‖q‖² + ‖c‖² (scaled data).

    The Gram form accumulates d products and two norms (≤ (2γ_d + 4u)(‖q‖² + ‖c‖²), any
    summation order, BLAS included); centring rounds each coordinate (≤ 4u (‖q‖² + ‖c‖²) on the
    squared distance); the exact distance itself is within γ_{d+2} of the true one (≤ 2(d + 3)u
    (‖q‖² + ‖c‖²)). Sum (4d + 14)u, doubled for safety: it only costs a few more exact pairs.
    """
    return (8.0 * d + 32.0) * _U


@njit(cache=True)
def _count_block(i0, i1, qs, cs, qq, cc, r2, radii, coef, all_exact, queries, centres, tile, counts):
    """counts[i] = #{j : ‖queries[i] − centres[j]‖ < radii[j]} for queries i0..i1, over tiles of
    ``tile`` centres: G = Qs Csᵀ by BLAS, then the screen; undecided pairs get the exact distance."""
    n = cs.shape[0]
    nq = i1 - i0
    qb = qs[i0:i1]
    g = np.empty((nq, tile))
    for j0 in range(0, n, tile):
        j1 = min(n, j0 + tile)
        if j1 - j0 == tile:
            np.dot(qb, cs[j0:j1].T, g)
            gv = g
        else:
            gv = np.dot(qb, cs[j0:j1].T)
        for a in range(nq):
            i = i0 + a
            qi = qq[i]
            total = 0
            for j in range(j0, j1):
                thr = r2[j]
                s = qi + cc[j] - 2.0 * gv[a, j - j0]
                marg = coef * (qi + cc[j]) + 8.0 * _U * thr + 1e-300
                if not all_exact and s < thr - marg:
                    total += 1
                elif all_exact or s <= thr + marg:
                    if math.sqrt(exact_sq_dist(centres, j, queries[i])) < radii[j]:
                        total += 1
            counts[i] += total


# Thin on purpose (parfor compilation of a large body is slow); the work is in _count_block.
@njit(parallel=True, cache=True)
def _ball_counts_parallel(qs, cs, qq, cc, r2, radii, coef, all_exact, queries, centres, block, tile, n_workers,
                          counts):
    m = qs.shape[0]
    n_blocks = (m + block - 1) // block
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(n_workers):  # one iteration per thread; query blocks handed out dynamically
        while True:
            b = next_task(counter)
            if b >= n_blocks:
                break
            i0 = b * block
            _count_block(i0, min(m, i0 + block), qs, cs, qq, cc, r2, radii, coef, all_exact, queries, centres,
                         tile, counts)


def _scaled(queries, centres):
    """Centred, power-of-two scaled copies (exact scaling) and the scale; all_exact for extreme spreads."""
    centre = centres.mean(0)
    qs = queries - centre
    cs = centres - centre
    spread = max(float(np.abs(qs).max()), float(np.abs(cs).max()))
    if spread == 0.0:
        return qs, cs, 1.0, False
    if not _SPREAD_MIN <= spread <= _SPREAD_MAX:
        return qs, cs, 1.0, True
    inv_scale = 2.0 ** -math.ceil(math.log2(spread))
    return qs * inv_scale, cs * inv_scale, inv_scale, False


def ball_counts(queries, centres, radii, batch_size=256):
    """For each query, the number of centres c with ‖query − c‖ < radius(c) (exact, float64).

    ``queries`` (m, d) and ``centres`` (n, d) float64 C-contiguous, ``radii`` (n,) float64.
    Blocks of ``batch_size`` queries are handed to the threads (one BLAS thread each); memory:
    scaled copies of the data and a ``batch_size`` × ``CENTRE_TILE`` tile per thread.
    """
    m, d = queries.shape
    counts = np.zeros(m, dtype=np.int64)
    if m == 0 or centres.shape[0] == 0:
        return counts
    qs, cs, inv_scale, all_exact = _scaled(queries, centres)
    qq = np.einsum("ij,ij->i", qs, qs)
    cc = np.einsum("ij,ij->i", cs, cs)
    r2 = (radii * inv_scale) ** 2
    from threadpoolctl import threadpool_limits

    # One BLAS thread per Numba thread: the parallelism is over query blocks.
    with threadpool_limits(1, user_api="blas"):
        _ball_counts_parallel(np.ascontiguousarray(qs), np.ascontiguousarray(cs), qq, cc, r2, radii,
                              _margin_coef(d), all_exact, queries, centres, int(batch_size), CENTRE_TILE,
                              numba.get_num_threads(), counts)
    return counts


def _check_params(nearest_k, batch_size, algorithm):
    nearest_k = check_parameter("nearest_k", nearest_k, Integer(1))
    batch_size = check_parameter("batch_size", batch_size, Integer(1))
    check_parameter("algorithm", algorithm, Options(("auto", "brute", "kd_tree")))
    return int(nearest_k), int(batch_size)


def _summary(k, counts_fake, counts_real, nn_real, radii_real):
    # The same reductions as prdc.compute_prdc, so the floats agree to the last bit.
    return {
        "precision": float((counts_fake > 0).mean()),
        "recall": float((counts_real > 0).mean()),
        "density": float((1.0 / float(k)) * counts_fake.mean()),
        "coverage": float((nn_real < radii_real).mean()),
    }


def prdc(real_features, fake_features, nearest_k=5, *, batch_size=256, algorithm="auto", n_jobs=None):
    """Precision, recall, density and coverage of ``fake_features`` against ``real_features``.

    Parameters
    ----------
    real_features : array of shape (n_real, d)
    fake_features : array of shape (n_fake, d)
        Features of real and generated samples: NumPy arrays or torch CPU tensors (computed in
        float64 on the CPU); CuPy arrays and CUDA tensors go to the CUDA backend; dask arrays
        (either or both) stay sharded on the workers, with the in-memory results
        (``fastdensity.metrics._prdc_dask``). Each set needs more than ``nearest_k`` rows (the
        ``prdc`` package needs ``nearest_k + 2``).
    nearest_k : int, default=5
        k of the k-nearest-neighbour radii.
    batch_size : int, default=256
        Query rows per task of the ball-membership pass (each thread holds a ``batch_size`` ×
        512 float64 tile: 1 MiB at the default, whatever the number of points). It does not
        change the result.
    algorithm : {"auto", "brute", "kd_tree"}, default="auto"
        kNN engine for the radii and the coverage (identical results; "auto" as ``KNNDensity``).
    n_jobs : int or None, default=None
        Threads (None: the current setting, all cores by default).

    Returns
    -------
    dict
        ``{"precision", "recall", "density", "coverage"}`` as floats, the numbers of
        ``prdc.compute_prdc(real_features, fake_features, nearest_k)`` (see the module notes on
        rounding at ball boundaries).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> real, fake = rng.standard_normal((500, 4)), rng.standard_normal((400, 4))
    >>> sorted(prdc(real, fake, nearest_k=5))
    ['coverage', 'density', 'precision', 'recall']
    """
    k, batch_size = _check_params(nearest_k, batch_size, algorithm)
    resolve_n_jobs(n_jobs)
    if any_dask(real_features, fake_features):
        from ._prdc_dask import check_dask_pair, prdc_dask

        real, fake = check_dask_pair(real_features, fake_features, k)
        n_real, n_fake, d = real.shape[0], fake.shape[0], real.shape[1]
        algorithms = (_algorithm(algorithm, n_real, d, k + 1), _algorithm(algorithm, n_fake, d, k + 1))
        return prdc_dask(real, fake, k, batch_size, algorithms, n_jobs, ball_counts)
    kind = common_kind(real_features, fake_features)
    backend = resolve_backend("auto", kind)
    if backend != "cpu":
        return _prdc_device(real_features, fake_features, k, batch_size, get_op("knn_distances", backend))
    real = check_features(to_host_numpy(real_features), "real_features", min_samples=k + 1)
    fake = check_features(to_host_numpy(fake_features), "fake_features", min_samples=k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real_features has {real.shape[1]} features and fake_features {fake.shape[1]}; they must match"
        )
    real = np.ascontiguousarray(real, dtype=np.float64)
    fake = np.ascontiguousarray(fake, dtype=np.float64)
    d = real.shape[1]
    with threads(n_jobs):
        index_real = knn_index(real, _algorithm(algorithm, real.shape[0], d, k + 1))
        index_fake = knn_index(fake, _algorithm(algorithm, fake.shape[0], d, k + 1))
        # k + 1 neighbours with the point itself: prdc's k-th smallest of a row holding the 0 self-distance.
        radii_real = knn_distances(real, None, k + 1, index=index_real)[0][:, k]
        radii_fake = knn_distances(fake, None, k + 1, index=index_fake)[0][:, k]
        nn_real = knn_distances(real, None, 1, index=index_fake)[0][:, 0]
        counts_fake = ball_counts(fake, real, radii_real, batch_size)
        counts_real = ball_counts(real, fake, radii_fake, batch_size)
    return _summary(k, counts_fake, counts_real, nn_real, radii_real)


def _algorithm(algorithm, n, d, k):
    return _auto_algorithm(n, d, k) if algorithm == "auto" else algorithm


# ------------------------------------------------------------------------ device arrays (GPU)
def _ball_counts_device(queries, centres, radii, batch_size):
    """:func:`ball_counts` with array operations on the arrays' device (torch or CuPy), float64.

    Screen as on the CPU; undecided pairs get Σ (q − c)² summed by the array library (its order),
    so a point within rounding of a radius may be decided differently than by the kNN op.
    """
    xp = _xp(common_kind(queries, centres))
    is_torch = xp.__name__ == "torch"
    m, d = queries.shape
    n = centres.shape[0]
    centre = centres.mean(0)
    qs, cs = queries - centre, centres - centre
    spread = max(float(xp.abs(qs).max()), float(xp.abs(cs).max()))
    inv_scale = 1.0 if spread == 0.0 else 2.0 ** -math.ceil(math.log2(spread))
    all_exact = spread != 0.0 and not _SPREAD_MIN <= spread <= _SPREAD_MAX
    if all_exact:
        inv_scale = 1.0
    qs, cs = qs * inv_scale, cs * inv_scale
    qq, cc = (qs * qs).sum(1), (cs * cs).sum(1)
    r2 = (radii * inv_scale) ** 2
    coef = _margin_coef(d)
    counts = xp.zeros(m, dtype=xp.int64, device=queries.device) if is_torch else xp.zeros(m, dtype=xp.int64)
    for q0 in range(0, m, batch_size):
        q1 = min(q0 + batch_size, m)
        for c0 in range(0, n, _DEVICE_TILE):
            c1 = min(c0 + _DEVICE_TILE, n)
            s = qq[q0:q1, None] + cc[None, c0:c1] - 2.0 * (qs[q0:q1] @ cs[c0:c1].T)
            thr = r2[None, c0:c1]
            marg = coef * (qq[q0:q1, None] + cc[None, c0:c1]) + 8.0 * _U * thr + 1e-300
            if all_exact:
                inside = s < -1.0  # never: every pair is undecided
                undecided = s == s
            else:
                inside = s < thr - marg
                undecided = (s <= thr + marg) & ~inside
            counts[q0:q1] += inside.sum(1)
            ii, jj = undecided.nonzero(as_tuple=True) if is_torch else undecided.nonzero()
            if ii.shape[0]:
                diff = queries[q0 + ii] - centres[c0 + jj]
                hit = xp.sqrt((diff * diff).sum(1)) < radii[c0 + jj]
                counts[q0:q1] += xp.bincount(ii[hit], minlength=q1 - q0)
    return counts


def _like(result, like):
    """The op's result (CuPy on the GPU) as ``like``'s array type: torch via DLPack, zero copy."""
    if type(like).__module__.startswith("torch") and not type(result).__module__.startswith("torch"):
        import torch

        return torch.from_dlpack(result)
    return result


def _prdc_device(real_features, fake_features, k, batch_size, knn):
    """PRDC of device arrays with the backend's ``knn_distances`` op (results stay on the device
    until the four means are read)."""
    kind = common_kind(real_features, fake_features)
    real = check_features(real_features, "real_features", min_samples=k + 1, kind=kind)
    fake = check_features(fake_features, "fake_features", min_samples=k + 1, kind=kind)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real_features has {real.shape[1]} features and fake_features {fake.shape[1]}; they must match"
        )
    radii_real = _like(knn(real, real, k + 1)[0], real)[:, k]
    radii_fake = _like(knn(fake, fake, k + 1)[0], fake)[:, k]
    nn_real = _like(knn(real, fake, 1)[0], real)[:, 0]
    counts_fake = _ball_counts_device(fake, real, radii_real, batch_size)
    counts_real = _ball_counts_device(real, fake, radii_fake, batch_size)
    n_real, n_fake = real.shape[0], fake.shape[0]
    return {
        "precision": int((counts_fake > 0).sum()) / n_fake,
        "recall": int((counts_real > 0).sum()) / n_real,
        "density": (1.0 / float(k)) * (int(counts_fake.sum()) / n_fake),
        "coverage": int((nn_real < radii_real).sum()) / n_real,
    }
