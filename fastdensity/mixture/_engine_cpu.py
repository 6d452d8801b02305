"""The CPU engine of ``GaussianMixture``: the Numba ops of ``_mixture_cpu`` (fused E-step, scoring
passes), fastdensity's k-means and k-means++ for the initialisation. See ``_engine.py`` for the
interface."""

from __future__ import annotations

import numpy as np

from .._backend import threads, to_host_numpy
from .._backend._validation import check_sample_weight
from ._arrays import host
from ._gaussian_params import _op, stats_from_labels, stats_from_resp


def _weighted_mean(X, w):
    """Σ w x / Σ w over the rows (the plain mean without weights), without overflow for data near
    the ends of the float64 range."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = np.mean(X, axis=0) if w is None else (w @ X) / np.sum(w)
        if not np.all(np.isfinite(mean)):  # the sum overflowed: the mean of X / n does not
            p = np.full(X.shape[0], 1.0 / X.shape[0]) if w is None else w / np.sum(w)
            mean = np.sum(X * p[:, None], axis=0)
    return mean


def _seed_stats(X, w, indices, k, covariance_type, shift):
    """Statistics of one seed row per component (responsibility 1 for its row)."""
    if np.unique(indices).size == k:
        labels = np.full(X.shape[0], -1, dtype=np.int64)
        labels[indices] = np.arange(k)
        return stats_from_labels(X, w, labels, X[indices], covariance_type, shift)
    resp = np.zeros((X.shape[0], k))  # a row seeds several components (duplicate rows)
    resp[indices, np.arange(k)] = 1.0
    return stats_from_resp(X, w, resp, covariance_type, shift)


class CPUEngine:
    name = "cpu"
    xp = np

    def scope(self, X, n_jobs):
        return threads(n_jobs)

    def compute_array(self, X):
        return np.ascontiguousarray(X, dtype=np.float64)

    def check_weights(self, est, sample_weight, X):
        if sample_weight is None:
            return None
        return check_sample_weight(to_host_numpy(host(sample_weight)), X.shape[0], xp=np)

    def n_positive(self, w, n):
        return n if w is None else int(np.count_nonzero(w))

    def centre(self, X, w):
        return _weighted_mean(X, w), float(X.shape[0] if w is None else np.sum(w))

    def initial_stats(self, est, X, w, random_state):
        n, k, ct, shift = X.shape[0], est.n_components, est.covariance_type, est._shift
        if est.init_params == "kmeans":  # fastdensity's Lloyd from k-means++ seeds
            centres, labels, _ = _op("kmeans")(X, k, w, random_state)
            return stats_from_labels(X, w, labels, centres, ct, shift)
        if est.init_params == "random":
            resp = random_state.uniform(size=(n, k))
            resp /= resp.sum(axis=1)[:, None]
            return stats_from_resp(X, w, resp, ct, shift)
        if est.init_params == "random_from_data":
            p = None if w is None else w / np.sum(w)
            indices = random_state.choice(n, size=k, replace=False, p=p)
        else:  # k-means++ on the parallel engine; the same draws as sklearn.cluster.kmeans_plusplus
            _, indices = _op("kmeans_plusplus")(X, k, w, random_state)
        return _seed_stats(X, w, np.asarray(indices), k, ct, shift)

    def e_step(self, X, w, means, prec_chol, log_weights, cov_type, shift):
        lpn, R, Sx, Sxx = _op("gmm_estep")(X, w, means, prec_chol, log_weights, cov_type, shift=shift)
        with np.errstate(invalid="ignore"):  # inf · 0 weight: NaN, caught as a non-finite bound
            total = float(lpn.sum()) if w is None else float((w * lpn).sum())
        return total, R, Sx, Sxx

    def weighted_log_prob(self, X, means, prec_chol, cov_type, log_weights):
        return _op("gmm_log_prob")(X, means, prec_chol, cov_type, log_weights)

    def log_prob_norm(self, X, means, prec_chol, log_weights, cov_type):
        return _op("gmm_log_prob_norm")(X, means, prec_chol, log_weights, cov_type)


CPU_ENGINE = CPUEngine()
