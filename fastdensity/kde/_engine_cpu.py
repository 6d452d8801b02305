"""The CPU KDE engine: the Numba sums of ``_kde_cpu.py`` (``_kde_metric_cpu.py`` for the
non-euclidean metrics) on NumPy data."""

from __future__ import annotations

import numpy as np

from .._backend import from_host_numpy, get_op, threads, to_host_numpy
from .._backend._validation import check_sample_weight
from . import _bandwidth
from ._kernels import log_kernel_norm, sample_unit_metric
from ._weights import equal_weights


def _host(a):
    """A fitted array on the host: a model fitted on a GPU brings it over (the state is cached)."""
    from .._backend._device import to_host

    return to_host(a)


class CPUEngine:
    name = "cpu"
    xp = np
    ALGORITHMS = ("exact", "tree", "fft")  # what "auto" may choose here (``_algorithm``)

    def scope(self, X, n_jobs):
        return threads(n_jobs)

    def check_metric(self, est, metric, fitting):
        pass  # every metric runs here

    def fit_bandwidth(self, est, X, sample_weight):
        if sample_weight is not None:
            sample_weight = check_sample_weight(to_host_numpy(sample_weight), X.shape[0], xp=np)
        # Equal weights are no weights: the same bandwidth, densities and draws to the last bit.
        weights = np.ones(X.shape[0]) if equal_weights(sample_weight) else sample_weight
        bandwidth_used, H = est._bandwidth_matrix(X, weights)
        chol = _bandwidth.cholesky_bandwidth(H)
        if not np.all(np.isfinite(_bandwidth.whiten(chol, np.asarray(X, dtype=np.float64)))):
            raise ValueError(
                "the training data divided by the bandwidth overflow float64 (data near "
                "1.8e308 with a bandwidth below 1); rescale the data or pass a larger bandwidth"
            )
        return sample_weight, bandwidth_used, H, weights, chol

    def state(self, est, dtype, device=None, whiten=True):
        """(chol, training data (d, n) in ``dtype``, log weights, inverse scales, log-norm).

        ``whiten=False`` (non-euclidean metrics): the raw float64 training data, and the log-norm
        log c_d − d log h of scikit-learn's convention (the same for a scalar bandwidth)."""
        cache = est._cache()
        key = np.dtype(dtype) if whiten else "metric"
        if key not in cache:
            X = np.asarray(_host(est.training_data_), dtype=np.float64)
            n, d = X.shape
            chol = est._bandwidth_cholesky()
            if whiten:
                train_t = np.ascontiguousarray(_bandwidth.whiten(chol, X - est._centre()).T, dtype=key)
            else:
                train_t = np.ascontiguousarray(X.T)
            weights = (np.ones(n) if equal_weights(est.sample_weight_)
                       else np.asarray(_host(est.sample_weight_), dtype=np.float64))
            with np.errstate(divide="ignore"):
                log_w = np.log(weights) - np.log(np.sum(weights))
            inv_scales = None
            if est.adaptive_factors_ is not None:
                lam = np.asarray(_host(est.adaptive_factors_), dtype=np.float64)
                log_w = log_w - d * np.log(lam)
                inv_scales = 1.0 / lam
            keep = np.isfinite(log_w)  # zero-weight rows contribute nothing: drop them
            if not np.all(keep):
                train_t = np.ascontiguousarray(train_t[:, keep])
                log_w = log_w[keep]
                inv_scales = None if inv_scales is None else inv_scales[keep]
            log_norm = log_kernel_norm(est.kernel, d) - float(np.sum(np.log(np.diag(chol))))
            cache[key] = (chol, train_t, log_w, inv_scales, log_norm)
        return cache[key]

    def tree_index(self, est, dtype):
        """The k-d tree over the state of ``dtype`` (``_tree_index``), built once per fit."""
        cache = est._cache()
        key = ("tree", np.dtype(dtype))
        if key not in cache:
            from ._tree_index import build_tree_index

            _, train_t, log_w, inv_scales, _ = self.state(est, dtype)
            cache[key] = build_tree_index(train_t, log_w, inv_scales, est.leaf_size)
        return cache[key]

    def drop_tree_index(self, est, dtype):
        est._cache().pop(("tree", np.dtype(dtype)), None)

    def log_density(self, est, X):
        """Log densities of NumPy ``X`` (m, d), float64 result."""
        metric, p, vec, mat = est._metric_spec(X.shape[1])
        if metric != "euclidean":
            from ._kde_metric_cpu import kde_logsum_metric

            _, train_t, log_w, inv_scales, log_norm = self.state(est, np.float64, whiten=False)
            h = float(np.sqrt(est.bandwidth_matrix_[0, 0]))
            return kde_logsum_metric(np.asarray(X, dtype=np.float64), train_t, log_w, est.kernel,
                                     metric, h, inv_scales, p=p, vec=vec, mat=mat) + log_norm
        dtype = np.float32 if X.dtype == np.float32 and est.training_data_.dtype == np.float32 else np.float64
        chol, train_t, log_w, inv_scales, log_norm = self.state(est, dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            queries = _bandwidth.whiten(chol, np.asarray(X, dtype=np.float64) - est._centre())
        # A query whose centred or whitened coordinates overflow (inf, or NaN from inf − inf in
        # the triangular solve) is infinitely far from the (finite) whitened data: +inf there
        # gives log density −inf (exactly what the true value, below −1e308, rounds to).
        queries[np.isnan(queries)] = np.inf
        if getattr(est, "effective_algorithm_", "exact") == "tree":
            from ._algorithm_tree import tree_logsum

            return tree_logsum(self, est, queries, dtype, log_norm) + log_norm
        with np.errstate(over="ignore"):
            queries = np.ascontiguousarray(queries, dtype=dtype)  # float32: overflow to ±inf
        kde_logsum = get_op("kde_logsum", "cpu")
        return kde_logsum(queries, None, log_w, est.kernel, inv_scales, train_t=train_t) + log_norm

    def sample(self, est, n_samples, seed):
        metric, p, vec, mat = est._metric_spec(est.n_features_in_)
        gen = np.random.default_rng(seed)
        X = np.asarray(est.training_data_, dtype=np.float64)
        n, d = X.shape
        if equal_weights(est.sample_weight_):
            idx = gen.integers(0, n, size=n_samples)
        else:
            w = np.asarray(est.sample_weight_, dtype=np.float64)
            idx = gen.choice(n, size=n_samples, p=w / w.sum())
        u = sample_unit_metric(est.kernel, d, n_samples, gen, metric, p, vec, mat)
        if est.adaptive_factors_ is not None:
            u *= np.asarray(est.adaptive_factors_)[idx, None]
        out = X[idx] + u @ est._bandwidth_cholesky().T
        return out.astype(est.training_data_.dtype, copy=False)

    def to_caller(self, result, kind):
        return from_host_numpy(result, kind)


CPU_ENGINE = CPUEngine()
