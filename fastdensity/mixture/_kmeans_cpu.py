"""Lloyd's k-means on the CPU, for ``GaussianMixture(init_params="kmeans")``: k-means++ seeds
(``_kmeans_plusplus_cpu``), then Lloyd steps, each one parallel pass over the data through the E-step
engine's fixed blocks and chunks (``_mixture_cpu``).

One pass assigns every row to its nearest centre (squared distances Σ (x_i − c_i)², computed
directly, not as ‖x‖² − 2 x·c + ‖c‖², so nothing cancels for data far from the origin; ties go to
the lowest index) and adds, per chunk, the weight and Σ w (x − c) of each cluster about its current
centre. The per-chunk partial sums are reduced in chunk order, so the result does not depend on
the number of threads. The stopping rule is scikit-learn's ``KMeans`` (``_kmeans_single_lloyd``):
labels unchanged ("strict convergence"), or the total squared centre shift at most ``tol`` times
the mean per-feature variance of X; empty clusters are moved to the rows farthest from their
centres, as scikit-learn does. The same seeds therefore give similar, not always identical,
labels to scikit-learn's (its distances are computed another way, so rounding ties can differ).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._backend._fastexp import FASTMATH
from .._backend._numba_drivers import serial_and_parallel
from ._kmeans_plusplus_cpu import kmeans_plusplus
from ._mixture_cpu import _as_rows, _weights
from ._mixture_cpu_blocks import BLOCK, CHUNK, PARALLEL_MIN_CHUNKS, _load_block


@njit(fastmath=FASTMATH, cache=True)
def _lloyd_chunk(X, w, C, labels, r0, r1, dmin, changed, wsum, dsum):
    """Rows r0..r1: labels (nearest centre), dmin (its squared distance); per cluster Σ w and
    Σ w (x − c) into wsum, dsum; the number of labels that changed into changed[0]."""
    d = X.shape[1]
    K = C.shape[0]
    xt = np.zeros((d, BLOCK))
    wb = np.empty(BLOCK)
    s = np.empty(BLOCK)
    best = np.empty(BLOCK)
    lab = np.empty(BLOCK, dtype=np.int64)
    n_changed = 0
    for b0 in range(r0, r1, BLOCK):
        nb = min(BLOCK, r1 - b0)
        _load_block(X, w, b0, nb, xt, wb)
        for b in range(BLOCK):
            best[b] = np.inf
            lab[b] = 0
        for c in range(K):
            for b in range(BLOCK):
                s[b] = 0.0
            for i in range(d):
                ci = C[c, i]
                for b in range(BLOCK):
                    t = xt[i, b] - ci
                    s[b] += t * t
            for b in range(BLOCK):
                better = s[b] < best[b]
                best[b] = s[b] if better else best[b]
                lab[b] = c if better else lab[b]
        for b in range(nb):
            row = b0 + b
            c = lab[b]
            if labels[row] != c:
                n_changed += 1
            labels[row] = c
            dmin[row] = best[b]
            wt = wb[b]
            wsum[c] += wt
            for i in range(d):
                dsum[c, i] += wt * (xt[i, b] - C[c, i])
    changed[0] += n_changed


def _lloyd_pass(X, w, C, labels, dmin, changed_p, wsum_p, dsum_p):
    n = X.shape[0]
    for ch in prange((n + CHUNK - 1) // CHUNK):
        r0 = np.int64(ch) * CHUNK
        _lloyd_chunk(X, w, C, labels, r0, min(n, r0 + CHUNK), dmin, changed_p[np.int64(ch)],
                     wsum_p[np.int64(ch)], dsum_p[np.int64(ch)])


_lloyd_pass_serial, _lloyd_pass_parallel = serial_and_parallel(_lloyd_pass)


def lloyd_step(X, w, centres, labels):
    """One assignment pass (updates ``labels`` in place): (number of changed labels, Σ w (k,),
    Σ w (x − c) (k, d) per cluster about its centre, squared distance of each row to its centre)."""
    n, d = X.shape
    K = centres.shape[0]
    n_chunks = max(1, (n + CHUNK - 1) // CHUNK)
    changed_p = np.zeros((n_chunks, 1), dtype=np.int64)
    wsum_p = np.zeros((n_chunks, K))
    dsum_p = np.zeros((n_chunks, K, d))
    dmin = np.empty(n)
    if n:
        driver = _lloyd_pass_parallel if n >= PARALLEL_MIN_CHUNKS * CHUNK else _lloyd_pass_serial
        driver(X, w, np.ascontiguousarray(centres, dtype=np.float64), labels, dmin, changed_p, wsum_p, dsum_p)
    return int(changed_p.sum()), wsum_p.sum(axis=0), dsum_p.sum(axis=0), dmin  # fixed-order reductions


def _relocate_empty(X, w, centres, labels, dmin, wsum, dsum, new):
    """scikit-learn's ``_relocate_empty_clusters_dense``: each empty cluster takes one of the rows
    farthest from their centres (the farthest first), which leaves its old cluster's sums (its
    label is left as it is, as in scikit-learn: the next step reassigns it)."""
    empty = np.flatnonzero(wsum <= 0.0)
    if empty.size == 0:
        return
    far = np.argsort(-dmin, kind="stable")[:empty.size]
    for e, row in zip(empty, far):
        old = labels[row]
        wsum[old] -= w[row]
        dsum[old] -= w[row] * (X[row] - centres[old])
        new[e] = X[row]
        wsum[e] = w[row]
        dsum[e] = 0.0
        new[old] = centres[old] + (dsum[old] / wsum[old] if wsum[old] > 0.0 else 0.0)


def kmeans(X, n_clusters, sample_weight, random_state, max_iter=300, tol=1e-4):
    """Weighted k-means: k-means++ seeding (the draws of ``sklearn.cluster.kmeans_plusplus``), then
    Lloyd steps with scikit-learn's stopping rule. Returns (centres (k, d), labels (n,) int64, the
    number of Lloyd steps); the labels are those of the returned centres."""
    X = _as_rows(X)
    n = X.shape[0]
    w = _weights(sample_weight, n)
    centres = kmeans_plusplus(X, n_clusters, sample_weight, random_state)[0]
    with np.errstate(over="ignore", invalid="ignore"):  # data near 1e308: the variance overflows
        threshold = tol * float(np.mean(np.var(X, axis=0))) if tol > 0 else 0.0
    labels = np.full(n, -1, dtype=np.int64)
    strict = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        changed, wsum, dsum, dmin = lloyd_step(X, w, centres, labels)
        with np.errstate(over="ignore", invalid="ignore"):  # overflowing data: the fit's statistics say so
            new = centres.copy()
            filled = wsum > 0.0
            new[filled] += dsum[filled] / wsum[filled, None]
            _relocate_empty(X, w, centres, labels, dmin, wsum, dsum, new)
            shift = float(np.sum((new - centres) ** 2))
        centres = new
        if changed == 0:  # the labels of the previous step again
            strict = True
            break
        if shift <= threshold:
            break
    if not strict:  # the labels of the final centres
        lloyd_step(X, w, centres, labels)
    return centres, labels, n_iter
