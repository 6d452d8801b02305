"""Dask arrays of queries: the row-wise methods of a fitted estimator run per row chunk.

A fitted estimator scores, predicts or assigns each row on its own, so a dask array of queries
is one task per row chunk running the estimator's own method on that chunk (a NumPy or a CuPy
block, which then runs on the CPU or the GPU engine as any other array of its type). The fitted
estimator enters the task graph once, as one key that every chunk task depends on: a distributed
scheduler sends it to each worker once (and workers share it between their threads), never with
every task. Results are lazy dask arrays with the queries' row chunks; totals (``score``,
``aic``, ``bic``) are reduced on the workers, and only the scalars come back.

Checks made before any task is built: the array is 2-D, its number of features is known and is
the fit's, and its row chunk sizes are known.

Fitting on a dask array is the estimators' own Dask engines (the training set stays sharded):
``mixture/_engine_dask.py``, ``kde/_engine_dask.py``, ``knn/_engine_dask.py``; a sharded fit
scores through its engine, not through these per-chunk decorators. Other estimators refuse a
dask array in ``fit`` with the backend layer's message.
"""

from __future__ import annotations

import functools
import uuid
import warnings

import numpy as np

from ._namespace import _is_dask_array


def _shipped(estimator):
    """The fitted estimator as one graph key: a named ``Delayed`` (named, so that dask does not
    tokenize, i.e. pickle and hash, the whole fitted state to name it)."""
    import dask

    name = f"fastdensity-{type(estimator).__name__}-{uuid.uuid4().hex}"
    return dask.delayed(estimator, name=name, pure=False, traverse=False)


def fitted_on_dask(estimator) -> bool:
    """Whether ``estimator`` was fitted on a dask array and keeps it sharded (its own Dask engine
    then answers every query)."""
    return _is_dask_array(getattr(estimator, "training_data_", None))


def one_column_chunk(X):
    """The 2-D dask array X with its columns in one chunk (each task sees whole rows)."""
    return X.rechunk({1: -1}) if X.numblocks[1] > 1 else X


def check_known_rows(X, name):
    """ValueError, before any work, unless the dask array X is 2-D with a known number of
    columns and known row chunk sizes."""
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_features); got shape {X.shape}")
    if not np.isfinite(X.shape[1]) or any(not np.isfinite(c) for c in X.chunks[0]):
        raise ValueError(f"{name}: the dask array's chunk sizes are unknown (shape {X.shape}); call compute_chunk_sizes() first")


def as_row_chunks(values, row_chunks):
    """1-D ``values`` (a NumPy or dask array, e.g. sample weights) as a float64 dask array with
    the row chunks ``row_chunks``; the caller has checked the shape."""
    if not _is_dask_array(values):
        import dask.array as da

        values = da.from_array(np.asarray(values), chunks=(row_chunks,))
    return values.astype(np.float64).rechunk((row_chunks,))


def _non_finite(block):
    return int(np.count_nonzero(~np.isfinite(block)))


def _add(a, b):
    return a + b


def non_finite_count(X):
    """A ``Delayed`` count of the NaN and infinite values of the dask array X (per-block counts
    summed in a tree)."""
    import dask

    return tree_reduce([dask.delayed(_non_finite)(b) for b in X.to_delayed().ravel()], _add)


def _check_queries(estimator, X, method_name):
    """The dask array X as the chunk tasks take it (one column chunk), or a ValueError before any
    work: X must be 2-D with the fit's number of features and known row chunk sizes."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    where = f"{type(estimator).__name__}.{method_name}"
    if X.ndim != 2:
        raise ValueError(f"{where}: a dask array of queries must be 2-D (rows, features); got {X.ndim}-D shape {X.shape}")
    n_features = X.shape[1]
    expected = getattr(estimator, "n_features_in_", None)
    if not np.isfinite(n_features):
        raise ValueError(f"{where}: the dask array's number of features is unknown (shape {X.shape}); call X.compute_chunk_sizes() first")
    if expected is not None and n_features != expected:
        raise ValueError(f"{where}: X has {n_features} features, but {type(estimator).__name__} was fitted with {expected} features")
    if any(not np.isfinite(c) for c in X.chunks[0]):
        raise ValueError(
            f"{where}: the dask array's row chunk sizes are unknown (shape {X.shape}, e.g. after boolean "
            "indexing); call X.compute_chunk_sizes() first"
        )
    return one_column_chunk(X)


def _run_on_block(block, estimator, method_name, args, kwargs):
    return getattr(estimator, method_name)(block, *args, **kwargs)


def _block_of_one_row(X):
    """A one-row block of X's chunk type (NumPy or CuPy) and dtype, for the result's metadata."""
    return np.zeros_like(X._meta, shape=(1, X.shape[1]))


def rows_accept_dask(method):
    """Decorate a row-wise method ``method(self, X, *args, **kwargs)`` (``score_samples``,
    ``predict``, ``predict_proba``): a dask array X gives a lazy dask array with X's row chunks
    (1-D results, or 2-D with one column chunk); anything else, and any query of a model fitted on
    a dask array (:func:`fitted_on_dask`: its sharded engine runs the method itself), calls
    ``method`` unchanged."""

    @functools.wraps(method)
    def wrapper(self, X=None, *args, **kwargs):
        if not _is_dask_array(X) or fitted_on_dask(self):
            return method(self, X, *args, **kwargs) if X is not None else method(self, *args, **kwargs)
        import dask.array as da

        X = _check_queries(self, X, method.__name__)
        # The result's dtype, dimensions and chunk type from one row (computed here, cheap; its
        # warnings, e.g. a zero row at distance 0 from training points, are not the caller's).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = method(self, _block_of_one_row(X), *args, **kwargs)
        chunks = (X.chunks[0],) + tuple((s,) for s in meta.shape[1:])
        return da.map_blocks(
            _run_on_block, X, _shipped(self), method.__name__, args, kwargs,
            chunks=chunks, drop_axis=[] if meta.ndim == 2 else [1],
            dtype=meta.dtype, meta=meta[:0],
        )

    return wrapper


def dask_total(values) -> float:
    """The float64 sum of a dask array, reduced on the workers (a tree reduction)."""
    return float(values.astype(np.float64).sum().compute())


def total_log_likelihood_accepts_dask(method):
    """Decorate ``_total_log_likelihood(self, X, sample_weight) -> (Σ w log p, Σ w)``: for a dask X
    (and weights that are None, a NumPy array or a dask array of as many rows), one ``compute`` of
    the lazy ``score_samples`` reduced on the workers; zero weights drop their rows (even where
    log p is -inf), as on the host. Invalid weights (negative, non-finite, all zero) raise the
    same ValueError as on the host, after that one compute."""

    @functools.wraps(method)
    def wrapper(self, X, sample_weight=None):
        if not _is_dask_array(X):
            return method(self, X, sample_weight)
        import dask
        import dask.array as da

        log_p = self.score_samples(X).astype(np.float64)
        if sample_weight is None:
            return dask_total(log_p), float(log_p.shape[0])
        w = sample_weight if _is_dask_array(sample_weight) else np.asarray(sample_weight)
        if w.shape != log_p.shape:
            raise ValueError(f"sample_weight must have shape {log_p.shape}; got {w.shape}")
        w = as_row_chunks(w, log_p.chunks[0])
        kept = w > 0
        total, w_sum, w_min, finite = dask.compute(
            da.where(kept, w * log_p, 0.0).sum(), w.sum(), w.min(), da.isfinite(w).all()
        )
        if not finite or w_min < 0:
            raise ValueError("sample_weight must be finite and non-negative")
        if w_sum <= 0:
            raise ValueError("sample_weight must have a positive sum")
        return float(total), float(w_sum)

    return wrapper


def tree_reduce(parts, combine, arity=2):
    """One ``Delayed`` combining the ``Delayed`` ``parts`` by ``combine(a, b)`` in a balanced tree
    (depth log₂ of the number of parts), not a chain: every level runs in parallel."""
    import dask

    if not parts:
        raise ValueError("nothing to reduce: no parts")
    level = list(parts)
    while len(level) > 1:
        level = [
            dask.delayed(combine)(*level[i:i + arity]) if len(level[i:i + arity]) > 1 else level[i]
            for i in range(0, len(level), arity)
        ]
    return level[0]


def row_blocks(X, name):
    """The non-empty row blocks of a 2-D dask array (one column chunk) as ``Delayed`` objects, after
    the checks that need no computation: 2-D, a known number of columns, known row chunks."""
    check_known_rows(X, name)
    X = one_column_chunk(X)
    blocks = X.to_delayed()[:, 0]
    return [b for b, rows in zip(blocks, X.chunks[0]) if rows > 0]

