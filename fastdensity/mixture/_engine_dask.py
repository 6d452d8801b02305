"""The Dask engine of ``GaussianMixture``: EM over a dask array of training rows that never
leaves the workers.

Each E-step runs the CPU engine's fused pass on every row block (a task per block, on the
workers), and the blocks' sufficient statistics (R, Sx, Sxx about the current means: sums, so
blocks add exactly) and log-likelihood totals are summed in a balanced tree; one ``compute`` per
iteration brings back only the (k, d, d)-sized totals. The M-step runs on the host as for every
engine. The initialisation gathers no data either: k-means++ seeds (``init_params="kmeans"``,
``"k-means++"``) or random rows (``"random_from_data"``) come from a uniform sample of the rows
(at most ``SAMPLE_ROWS``; weights act as sampling probabilities within it), and ``"kmeans"``
then runs Lloyd steps over the whole array (one ``compute`` each). ``init_params="random"``
(dense random responsibilities per row) is not supported on dask arrays.

Given the same initial parameters (``weights_init``, ``means_init``, ``precisions_init``), the
fit is the in-memory fit up to the order of the sums. See ``_engine.py`` for the interface.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .._backend._dask import as_row_chunks, one_column_chunk, row_blocks, tree_reduce
from ._engine_cpu import CPU_ENGINE, _seed_stats
from ._gaussian_params import Stats, stats_from_labels

SAMPLE_ROWS = 100_000  # rows drawn for the k-means++ / random-row seeds
LLOYD_STEPS = 10  # distributed Lloyd steps after the seeds ("kmeans"), fewer when converged
LLOYD_TOL = 1e-4  # relative to the mean per-feature variance, as k-means' own rule


def _blocks(X, w):
    """[(X block, w block or None)] as Delayed pairs with the same row chunks."""
    xs = row_blocks(X, "X")
    if w is None:
        return [(x, None) for x in xs]
    ws = list(w.to_delayed())
    return list(zip(xs, [b for b, rows in zip(ws, X.chunks[0]) if rows > 0]))


def _add(a, b):
    return tuple(x + y for x, y in zip(a, b))


def _summed(parts):
    import dask

    return dask.compute(tree_reduce(parts, _add))[0]


def _block_estep(x, w, means, prec_chol, log_weights, cov_type, shift):
    return CPU_ENGINE.e_step(x, w, means, prec_chol, log_weights, cov_type, shift)


def _block_moments(x, w):
    """(Σ w x, Σ w, non-finite values of x, non-finite or negative weights, rows of positive
    weight) of one block."""
    x = np.asarray(x, dtype=np.float64)
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if w is None:
        return x.sum(axis=0), float(x.shape[0]), bad, 0, x.shape[0]
    w = np.asarray(w, dtype=np.float64)
    bad_w = int(np.count_nonzero(~np.isfinite(w) | (w < 0)))
    return w @ x, float(w.sum()), bad, bad_w, int(np.count_nonzero(w))


def _block_positive(w):
    w = np.asarray(w)
    return int(np.count_nonzero(w > 0)), int(np.count_nonzero(~np.isfinite(w) | (w < 0)))


def _nearest(x, centres, rows=65536):
    """The nearest centre of each row, in slices of ``rows`` (bounded temporaries: rows × k)."""
    cc = (centres * centres).sum(axis=1)
    labels = np.empty(x.shape[0], dtype=np.int64)
    for start in range(0, x.shape[0], rows):
        part = x[start:start + rows]
        labels[start:start + rows] = np.argmin(cc[None, :] - 2.0 * part @ centres.T, axis=1)
    return labels


def _block_label_stats(x, w, centres, cov_type, shift):
    x = np.ascontiguousarray(x, dtype=np.float64)
    stats = stats_from_labels(x, w, _nearest(x, centres), centres, cov_type, shift)
    return stats.R, stats.Sx, stats.Sxx


class DaskEngine:
    name = "dask"

    @property
    def xp(self):
        import dask.array

        return dask.array

    def scope(self, X, n_jobs):
        return contextlib.nullcontext()  # the workers' own threads run the blocks

    def compute_array(self, X):
        return one_column_chunk(X.astype(np.float64))

    def check_weights(self, est, sample_weight, X):
        """The weights as a float64 dask array with X's row chunks (checked with the data's first
        pass, in ``centre``): a NumPy array of n values or a dask array of n rows."""
        if sample_weight is None:
            return None
        from .._backend._namespace import _is_dask_array

        w = sample_weight if _is_dask_array(sample_weight) else np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (X.shape[0],):
            raise ValueError(f"sample_weight must have shape ({X.shape[0]},); got {w.shape}")
        return as_row_chunks(w, X.chunks[0])

    def n_positive(self, w, n):
        """Rows of positive weight (one pass over the weights)."""
        import dask

        if w is None:
            return n
        positive, bad = _summed([dask.delayed(_block_positive)(b) for b in w.to_delayed()])
        if bad:
            raise ValueError(f"sample_weight must be finite and non-negative ({bad} values are not)")
        return int(positive)

    def centre(self, X, w):
        """(Σ w x / Σ w, Σ w) in one pass, which also checks the data and the weights."""
        import dask

        sum_wx, total, bad, bad_w, _ = _summed([dask.delayed(_block_moments)(x, wb) for x, wb in _blocks(X, w)])
        if bad:
            raise ValueError(f"Input X contains NaN or infinity ({bad} values)")
        if bad_w:
            raise ValueError(f"sample_weight must be finite and non-negative ({bad_w} values are not)")
        if not total > 0:
            raise ValueError("sample_weight must have a positive sum")
        return sum_wx / total, float(total)

    def _sample(self, X, w, random_state):
        """(rows, their weights or None) of a uniform sample of at most SAMPLE_ROWS rows."""
        n = X.shape[0]
        if n <= 4 * SAMPLE_ROWS:
            take = np.sort(random_state.choice(n, size=min(n, SAMPLE_ROWS), replace=False))
        else:  # not choice(replace=False): it permutes all n indices (400 MB at 5e7 rows)
            take = np.unique(random_state.randint(0, n, size=SAMPLE_ROWS))
        rows = np.asarray(X[take].compute(), dtype=np.float64)
        return rows, None if w is None else np.asarray(w[take].compute(), dtype=np.float64)

    def initial_stats(self, est, X, w, random_state):
        import dask

        k, ct, shift = est.n_components, est.covariance_type, est._shift
        if est.init_params == "random":
            raise NotImplementedError(
                'init_params="random" (random responsibilities per row) is not supported on a dask '
                'array; use "kmeans", "k-means++" or "random_from_data", or give the initial parameters'
            )
        rows, rows_w = self._sample(X, w, random_state)
        if est.init_params == "random_from_data":
            p = None if rows_w is None else rows_w / rows_w.sum()
            indices = random_state.choice(rows.shape[0], size=k, replace=False, p=p)
            return _seed_stats(rows, rows_w, np.asarray(indices), k, ct, shift)
        from ._gaussian_params import _op

        _, indices = _op("kmeans_plusplus")(rows, k, rows_w, random_state)
        if est.init_params == "k-means++":
            return _seed_stats(rows, rows_w, np.asarray(indices), k, ct, shift)
        # "kmeans": Lloyd steps over every row from the sample's k-means++ seeds
        centres = rows[np.asarray(indices)]
        threshold = LLOYD_TOL * float(np.mean(np.var(rows, axis=0)))
        blocks = _blocks(X, w)
        for _ in range(LLOYD_STEPS):
            R, Sx, Sxx = _summed([dask.delayed(_block_label_stats)(x, wb, centres, ct, shift) for x, wb in blocks])
            moved = np.divide(Sx, R[:, None], out=np.zeros_like(Sx), where=R[:, None] > 0)
            centres = centres + moved
            if float(np.sum(moved * moved)) <= threshold:
                break
        R, Sx, Sxx = _summed([dask.delayed(_block_label_stats)(x, wb, centres, ct, shift) for x, wb in blocks])
        return Stats(R, Sx, Sxx, centres, np.asarray(shift, dtype=np.float64))

    def e_step(self, X, w, means, prec_chol, log_weights, cov_type, shift):
        import dask

        parts = [dask.delayed(_block_estep)(x, wb, means, prec_chol, log_weights, cov_type, shift)
                 for x, wb in _blocks(X, w)]
        return _summed(parts)

    def weighted_log_prob(self, X, means, prec_chol, cov_type, log_weights):
        raise NotImplementedError("fit_predict on a dask array: use fit(X).predict(X), which is lazy")

    def log_prob_norm(self, X, means, prec_chol, log_weights, cov_type):
        raise NotImplementedError("use score_samples(X) on a dask array, which is lazy")


DASK_ENGINE = DaskEngine()
