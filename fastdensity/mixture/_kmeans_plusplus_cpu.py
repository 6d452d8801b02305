"""k-means++ seeding of the Gaussian mixture on the CPU, one parallel pass over the data per centre
through the E-step engine's fixed blocks and chunks (``_mixture_cpu``), so that the reduction order,
and therefore the result, does not depend on the number of threads."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._backend._fastexp import FASTMATH
from ._mixture_cpu import _as_rows
from ._mixture_cpu_blocks import BLOCK, CHUNK, PARALLEL_MIN_CHUNKS, _load_block

# ------------------------------------------------------------------------ k-means++ seeding
@njit(fastmath=FASTMATH, cache=True)
def _kpp_chunk(X, w, cand, closest, r0, r1, dist, pot):
    """For rows r0..r1: dist[t, i] = min(closest[i], ‖x_i − cand_t‖²); pot[t] += Σ w_i dist[t, i]."""
    d = X.shape[1]
    T = cand.shape[0]
    xt = np.zeros((d, BLOCK))
    wb = np.empty(BLOCK)
    s = np.empty(BLOCK)
    for b0 in range(r0, r1, BLOCK):
        nb = min(BLOCK, r1 - b0)
        _load_block(X, w, b0, nb, xt, wb)
        for t in range(T):
            for b in range(BLOCK):
                s[b] = 0.0
            for j in range(d):
                cj = cand[t, j]
                for b in range(BLOCK):
                    a = xt[j, b] - cj
                    s[b] += a * a
            acc = 0.0
            for b in range(nb):
                v = min(s[b], closest[b0 + b])
                dist[t, b0 + b] = v
                acc += wb[b] * v
            pot[t] += acc


@njit(parallel=True, cache=True)
def _kpp_pass(X, w, cand, closest, dist, pot_p):
    n = X.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    for ch in prange(n_chunks):
        r0 = np.int64(ch) * CHUNK
        r1 = min(n, r0 + CHUNK)
        _kpp_chunk(X, w, cand, closest, r0, r1, dist, pot_p[np.int64(ch)])


def _candidate_distances(X, w, cand, closest):
    n = X.shape[0]
    cand = np.ascontiguousarray(cand, dtype=np.float64)
    dist = np.empty((cand.shape[0], n))
    pot_p = np.zeros(((n + CHUNK - 1) // CHUNK, cand.shape[0]))
    if n >= PARALLEL_MIN_CHUNKS * CHUNK:
        _kpp_pass(X, w, cand, closest, dist, pot_p)
    else:
        for ch in range(pot_p.shape[0]):
            _kpp_chunk(X, w, cand, closest, ch * CHUNK, min(n, (ch + 1) * CHUNK), dist, pot_p[ch])
    return dist, pot_p.sum(axis=0)  # fixed-order reduction


def kmeans_plusplus(X, n_clusters, sample_weight, random_state):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with 2 + ⌊log k⌋ local trials),
    drawing from ``random_state`` exactly as ``sklearn.cluster.kmeans_plusplus`` does, so that
    the same seed picks the same rows (barring rounding ties); the distances to the candidates
    and the potentials are one parallel pass over the data per centre.

    Returns (centres (k, d), indices (k,)).
    """
    X = _as_rows(X)
    with np.errstate(over="ignore", invalid="ignore"):  # data spread beyond 1e154: distances overflow
        return _kmeans_plusplus(X, n_clusters, sample_weight, random_state)


def _kmeans_plusplus(X, n_clusters, sample_weight, random_state):
    n = X.shape[0]
    w = np.ones(n) if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float64)
    n_local_trials = 2 + int(np.log(n_clusters))
    indices = np.full(n_clusters, -1, dtype=np.int64)
    centre_id = random_state.choice(n, p=w / w.sum())
    indices[0] = centre_id
    dist, pot = _candidate_distances(X, w, X[centre_id][None], np.full(n, np.inf))
    closest, current_pot = dist[0], pot[0]
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * current_pot
        candidate_ids = np.searchsorted(np.cumsum(w * closest), rand_vals)
        np.clip(candidate_ids, None, n - 1, out=candidate_ids)
        dist, pot = _candidate_distances(X, w, X[candidate_ids], closest)
        best = int(np.argmin(pot))
        current_pot = pot[best]
        closest = dist[best]
        indices[c] = candidate_ids[best]
    return X[indices].copy(), indices
